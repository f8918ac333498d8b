# AddSign (Bello et al. 2017): g * (1 + sign(g) * sign(m)), with m a moving average of g.
def train(w, g, m, lr):
    m = interp(g, m, 0.9)
    sg = sign(g)
    sm = sign(m)
    agree = sg * sm
    scale = agree + 1.0
    update = g * scale
    update = update * lr
    return update, m
