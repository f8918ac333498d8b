# AdamW as the paper's warm start (Chen et al. 2023, Program 1): no bias correction, the learning
# rate scaled inside the program. This is the program every search starts from.
def train(w, g, m, v, lr):
    g2 = square(g)
    m = interp(g, m, 0.9)
    v = interp(g2, v, 0.999)
    sqrt_v = sqrt(v)
    update = m / sqrt_v
    wd = w * 0.01
    update = update + wd
    lr = lr * 0.001
    update = update * lr
    return update, m, v
