# Lion (Chen et al. 2023, Program 1 simplified), as lion-pytorch's Lion(betas=(0.9, 0.99), weight_decay=0.01).
def train(w, g, m, lr):
    update = interp(g, m, 0.9)
    update = sign(update)
    m = interp(g, m, 0.99)
    wd = w * 0.01
    update = update + wd
    update = update * lr
    return update, m
