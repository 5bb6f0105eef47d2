def reverse(s):
    return s[::-1]
# Write a test for the function reverse below
assert reverse(
