def train(w, g, m, v, lr):
    g2 = square(g)
    m = interp(g, m, 0.9)
    v = interp(g2, v, 0.999)
    sqrt_v = sqrt(v)
    update = m / sqrt_v
    wd = w * (-0.429764)
    update = update + wd
    lr = clip(lr, 0.001)
    update = update * lr
    return update, m, v
