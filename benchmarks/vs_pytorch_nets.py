"""PyTorch networks and train steps for `benchmarks/vs_pytorch.py`, written from the papers.

Only imported by the PyTorch worker of that script (torch is the optional
`bench` extra, never a dependency of the package). Each network has the
architecture and parameter count of its Keras counterpart in
`keras_imbalance.applications`; the script checks the counts. Each `*_step`
returns a zero-argument function that runs one train step on fixed tensors
and returns the loss as a Python float (so the step has finished when it
returns).
"""

import torch
import torch.nn.functional as F
from torch import nn

# ------------------------------------------------------------------ ResNet-32 (He et al. 2016, Sec. 4.2)


class BasicBlock(nn.Module):
    """3x3 conv-BN-ReLU-3x3 conv-BN + shortcut, ReLU; option A shortcut (subsample, zero-pad channels)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.pad = cout - cin
        self.stride = stride

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        short = x
        if self.stride != 1 or self.pad:
            short = x[:, :, ::self.stride, ::self.stride]
            short = F.pad(short, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + short)


class ResNetCifar(nn.Module):
    def __init__(self, depth, num_classes, widths=(16, 32, 64)):
        super().__init__()
        n = (depth - 2) // 6
        self.conv = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(widths[0])
        blocks, cin = [], widths[0]
        for stage, w in enumerate(widths):
            for i in range(n):
                blocks.append(BasicBlock(cin, w, 2 if stage > 0 and i == 0 else 1))
                cin = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(widths[-1], num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(x.mean(dim=(2, 3)))


def resnet_cifar(depth, num_classes):
    return ResNetCifar(depth, num_classes)


def count_params(net):
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def _sgd(params):
    # The recipes' CoupledSGD: L2 added to the gradient before momentum, which is torch's weight_decay.
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=2e-4)


def classifier_update(net, opt, x, y):
    """One CE step of `net` (in training mode) on (x, y); the loss as a float."""
    net.train()
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def erm_step(net, x, y):
    opt = _sgd(net.parameters())
    return lambda: classifier_update(net, opt, x, y)


# ------------------------------------------------------------------ M2m (Kim et al. 2020, Algorithm 1)


def m2m_step(f, g, x, y, class_counts, attack_steps=10, candidates_only=False, beta=None, lam=0.5, gamma=0.9,
             step_size=0.1, noise_norm=0.1):
    """One M2m step: draw slots, seeds and rejection coins, translate, gamma test, classifier step.

    The draws (Sec. 2.3, eqs. 3 and 5) are those of `models.M2m`: a slot with
    probability 1 - N_y / N_max, a seed j of the batch with probability
    proportional to (1 - beta^((N_yj - N_yi)+)) / n_batch(y_j), a Bernoulli
    coin with that acceptance probability. `candidates_only=False` translates
    every position (the package's fixed-shape default), True only slots with
    a seed whose coin succeeded. The translation: x0 = clip(seed + delta),
    T steps x <- clip(x - eta grad / |grad|) on CE(g(x), k) + lam f_k0(x),
    f and g in inference mode; accept iff CE(g(x*), k) <= gamma.
    """
    counts = torch.tensor(class_counts, dtype=torch.float32)
    beta = 0.999 ** (5000.0 / float(max(class_counts))) if beta is None else beta
    for p in g.parameters():  # g is frozen (Sec. 2.1)
        p.requires_grad_(False)
    opt = _sgd(f.parameters())
    num_classes = len(class_counts)

    def translate(x0, target, seed_class):
        x_t = x0
        for _ in range(attack_steps):
            x_t = x_t.detach().requires_grad_(True)
            loss = F.cross_entropy(g(x_t), target, reduction="sum")
            if lam > 0:
                loss = loss + lam * f(x_t).gather(1, seed_class[:, None]).sum()
            (grad,) = torch.autograd.grad(loss, x_t)
            norm = grad.flatten(1).norm(dim=1).view(-1, *([1] * (grad.dim() - 1)))
            x_t = (x_t - step_size * grad / (norm + 1e-12)).clamp(0.0, 1.0)
        return x_t.detach()

    def step():
        batch = y.shape[0]
        n_y = counts[y]
        slot = torch.rand(batch) < 1.0 - n_y / counts.max()
        p_acc = 1.0 - beta ** torch.relu(n_y[None, :] - n_y[:, None])
        in_batch = torch.bincount(y, minlength=num_classes).float()
        weight = p_acc / in_batch[y][None, :]
        has_seed = weight.sum(dim=1) > 0
        seed_index = torch.multinomial(torch.where(has_seed[:, None], weight, torch.ones_like(weight)), 1)[:, 0]
        p_seed = p_acc.gather(1, seed_index[:, None])[:, 0]
        seed_class = y[seed_index]
        noise = torch.randn_like(x)
        delta = noise_norm * noise / noise.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        candidate = slot & has_seed & (torch.rand(batch) < p_seed)
        rows = candidate.nonzero()[:, 0] if candidates_only else torch.arange(batch)
        mixed = x
        f.eval()
        g.eval()
        if rows.numel():
            x0 = (x[seed_index[rows]] + delta[rows]).clamp(0.0, 1.0)
            target = y[rows]
            x_star = translate(x0, target, seed_class[rows])
            with torch.no_grad():
                confident = F.cross_entropy(g(x_star), target, reduction="none") <= gamma
            accept = candidate[rows] & confident
            mixed = x.clone()
            mixed[rows[accept]] = x_star[accept].to(x.dtype)
        return classifier_update(f, opt, mixed, y)

    return step


# ------------------------------------------------------------------ CycleGAN (Zhu et al. 2017, App. 7.2)


def _init(net):
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
    return net


def _in(c):
    return nn.InstanceNorm2d(c, affine=False, track_running_stats=False)


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), _in(c), nn.ReLU(True),
                                  nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), _in(c))

    def forward(self, x):
        return x + self.body(x)


def resnet_generator(channels, filters, blocks):
    """c7s1-F, d2F, d4F, blocks x R4F, u2F, uF, c7s1-C, tanh (as `applications.ResnetGenerator`)."""
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, filters, 7), _in(filters), nn.ReLU(True)]
    for mult in (1, 2):
        layers += [nn.Conv2d(filters * mult, filters * mult * 2, 3, 2, 1), _in(filters * mult * 2), nn.ReLU(True)]
    layers += [ResBlock(filters * 4) for _ in range(blocks)]
    for mult in (4, 2):
        layers += [nn.ConvTranspose2d(filters * mult, filters * mult // 2, 3, 2, 1, output_padding=1),
                   _in(filters * mult // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(filters, channels, 7), nn.Tanh()]
    return _init(nn.Sequential(*layers))


def patchgan(channels, filters, num_layers):
    """C F (no norm) then num_layers 4x4 convs (stride 2 but the last), IN, LeakyReLU; 4x4 conv to 1 channel."""
    layers = [nn.Conv2d(channels, filters, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    cin = filters
    for n in range(1, num_layers + 1):
        cout = filters * min(2**n, 8)
        layers += [nn.Conv2d(cin, cout, 4, 2 if n < num_layers else 1, 1), _in(cout), nn.LeakyReLU(0.2, True)]
        cin = cout
    layers.append(nn.Conv2d(cin, 1, 4, 1, 1))
    return _init(nn.Sequential(*layers))


class ImagePool:
    """CycleGAN's history pool: store up to `size` fakes; once full, return a stored one (and store the new) with probability 0.5."""

    def __init__(self, size=50):
        self.size = size
        self.images = []

    def query(self, images):
        out = []
        for image in images:
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand(()) < 0.5:
                i = int(torch.randint(0, self.size, ()))
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out, 0)


def cyclegan_step(g_ab, g_ba, d_a, d_b, a, b, cycle_weight=10.0, identity_weight=5.0):
    """One CycleGAN step as in the reference's optimize_parameters: G_AB and G_BA jointly, then D_A and D_B.

    `a`, `b` in [0, 1] are mapped to the generators' [-1, 1] inside the step,
    as `models.CycleGAN` does.
    """
    opt_g = torch.optim.Adam(list(g_ab.parameters()) + list(g_ba.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(list(d_a.parameters()) + list(d_b.parameters()), lr=2e-4, betas=(0.5, 0.999))
    pool_a, pool_b = ImagePool(), ImagePool()

    def lsgan(pred, target):
        return F.mse_loss(pred, torch.full_like(pred, target))

    def set_requires_grad(nets, flag):
        for net in nets:
            for p in net.parameters():
                p.requires_grad_(flag)

    def step():
        real_a, real_b = a * 2.0 - 1.0, b * 2.0 - 1.0
        fake_b = g_ab(real_a)
        rec_a = g_ba(fake_b)
        fake_a = g_ba(real_b)
        rec_b = g_ab(fake_a)
        set_requires_grad((d_a, d_b), False)
        opt_g.zero_grad(set_to_none=True)
        loss_g = (lsgan(d_b(fake_b), 1.0) + lsgan(d_a(fake_a), 1.0)
                  + cycle_weight * (F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b)))
        if identity_weight > 0:
            loss_g = loss_g + identity_weight * (F.l1_loss(g_ab(real_b), real_b) + F.l1_loss(g_ba(real_a), real_a))
        loss_g.backward()
        opt_g.step()
        set_requires_grad((d_a, d_b), True)
        opt_d.zero_grad(set_to_none=True)
        pooled_b = pool_b.query(fake_b.detach())
        pooled_a = pool_a.query(fake_a.detach())
        loss_d = 0.5 * (lsgan(d_b(real_b), 1.0) + lsgan(d_b(pooled_b), 0.0))
        loss_d = loss_d + 0.5 * (lsgan(d_a(real_a), 1.0) + lsgan(d_a(pooled_a), 0.0))
        loss_d.backward()
        opt_d.step()
        return loss_g.item() + loss_d.item()

    return step
