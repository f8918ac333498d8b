# AdamW exactly as torch.optim.AdamW (betas 0.9/0.999, eps 1e-8 = the division guard,
# weight_decay 0.01, bias correction through the step count t,
# as power(c, -1.0) so that the division guard does not shift it).
def train(w, g, m, v, lr, t):
    m = interp(g, m, 0.9)
    g2 = square(g)
    v = interp(g2, v, 0.999)
    b1t = power(0.9, t)
    c1 = 1.0 - b1t
    b2t = power(0.999, t)
    c2 = 1.0 - b2t
    inv_c1 = power(c1, -1.0)
    inv_c2 = power(c2, -1.0)
    m_hat = m * inv_c1
    v_hat = v * inv_c2
    denom = sqrt(v_hat)
    update = m_hat / denom
    wd = w * 0.01
    update = update + wd
    update = update * lr
    return update, m, v
