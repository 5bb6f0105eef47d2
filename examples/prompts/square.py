# Question: what does square(4) return?
def square(x):
    return x * x
# Answer:
