def longest(words):
    best = ""
    for w in words:
        if len(w) > len(best):
            best = w
    return best

# Write a test for the function longest below
assert longest(
