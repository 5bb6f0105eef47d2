def add(a, b):
    return a + b

# Write a test for the function add below
assert add(
