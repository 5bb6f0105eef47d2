def is_even(n):
    """Return True when n is even."""
    return n % 2 == 0

# Write a test for the function is_even below
assert is_even(
