def mean(values):
    """Return the arithmetic mean of a non-empty list."""
    total = 0
    for v in values:
        total += v
    return total / len(values)
