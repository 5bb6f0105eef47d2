# Question: what does this function return for "abc"?
def reverse(s):
    return s[::-1]
# Answer:
