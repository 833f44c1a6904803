"""Small PyTorch models shared by the TorchScript importer tests (and anyone else who wants a
real network to import): plain torch code (no torchvision), random weights from fixed seeds,
eval mode.

Each ``make_<name>()`` returns ``(module, example_inputs)`` -- the module already in eval mode
with its weights drawn from ``torch.manual_seed(seed)``, the inputs a tuple of tensors drawn
from a seeded generator. ``MODELS`` maps the name to its factory.

- ``mlp``: Linear/ReLU/Dropout x2, Linear, log_softmax -- [4, 64] -> [4, 10].
- ``small_cnn``: conv-BN-ReLU, max pool, conv-BN-ReLU6 (groups=2), adaptive average pool,
  flatten, linear -- [2, 3, 32, 32] -> [2, 10].
- ``residual_block``: a ResNet basic block with a strided 1x1 downsample -- [1, 16, 16, 16].
- ``resnet18``: torchvision's ResNet-18 written out -- [1, 3, 224, 224] -> [1, 1000].
- ``mobilenet_v2``: torchvision's MobileNetV2 written out (ReLU6, depthwise convs, inverted
  residuals) -- [1, 3, 224, 224] -> [1, 1000].
- ``bert_layer``: one BERT-base encoder layer (hidden 768, 12 heads, GELU, LayerNorm,
  additive attention mask built from a 0/1 mask input) at sequence length 128 -- inputs
  hidden states [1, 128, 768] and mask [1, 128].
- ``gpt2_block``: GPT-2-style decoder: token + position embeddings (int64 token ids), one
  pre-LN block with a causal mask (a tril buffer sliced by the sequence length, masked_fill),
  the tanh GELU written out, final LayerNorm and a tied LM head -- ids [1, 64] -> [1, 64, 512].
- ``capsnet``: CapsNet on 28x28 digits: conv, primary capsules, squash (via ``norm``), dynamic
  routing with 3 iterations (a Python loop: unrolled by tracing, a ``prim::Loop`` in script)
  -- [1, 1, 28, 28] -> capsule lengths [1, 10].
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

# ------------------------------------------------------------------------------ MLP


class MLP(nn.Module):
    def __init__(self, d_in=64, hidden=128, d_out=10):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, hidden // 2)
        self.fc3 = nn.Linear(hidden // 2, d_out)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        x = self.drop(F.relu(self.fc1(x)))
        x = self.drop(torch.relu(self.fc2(x)))
        return F.log_softmax(self.fc3(x), dim=-1)


# ------------------------------------------------------------------------------ small CNN


class SmallCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1, groups=2)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.relu6(self.bn2(self.conv2(x)))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


# ------------------------------------------------------------------------------ ResNet


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet18(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._layer(64, 1)
        self.layer2 = self._layer(128, 2)
        self.layer3 = self._layer(256, 2)
        self.layer4 = self._layer(512, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)

    def _layer(self, planes, stride):
        blocks = [BasicBlock(self.inplanes, planes, stride), BasicBlock(planes, planes)]
        self.inplanes = planes
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


# ------------------------------------------------------------------------------ MobileNetV2


def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, kernel=3, stride=1, groups=1):
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups,
                                   bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand_ratio):
        super().__init__()
        hidden = int(round(cin * expand_ratio))
        self.use_res_connect = stride == 1 and cin == cout
        layers = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU(cin, hidden, kernel=1))
        layers += [ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000, width_mult=1.0):
        super().__init__()
        cin, last = _make_divisible(32 * width_mult), _make_divisible(1280 * max(1.0, width_mult))
        settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                    (6, 160, 3, 2), (6, 320, 1, 1)]
        features = [ConvBNReLU(3, cin, stride=2)]
        for t, c, n, s in settings:
            cout = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        features.append(ConvBNReLU(cin, last, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


# ------------------------------------------------------------------------------ BERT layer


class BertSelfAttention(nn.Module):
    def __init__(self, hidden=768, heads=12):
        super().__init__()
        self.num_heads = heads
        self.head_dim = hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(0.1)

    def split_heads(self, x):
        new_shape = x.size()[:-1] + (self.num_heads, self.head_dim)
        return x.view(new_shape).permute(0, 2, 1, 3)

    def forward(self, hidden_states, attention_mask):
        q = self.split_heads(self.query(hidden_states))
        k = self.split_heads(self.key(hidden_states))
        v = self.split_heads(self.value(hidden_states))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        scores = scores + attention_mask
        probs = self.dropout(F.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size(0), ctx.size(1), -1)


class BertLayer(nn.Module):
    def __init__(self, hidden=768, heads=12, intermediate=3072, eps=1e-12):
        super().__init__()
        self.attention = BertSelfAttention(hidden, heads)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_norm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Linear(hidden, intermediate)
        self.output = nn.Linear(intermediate, hidden)
        self.out_norm = nn.LayerNorm(hidden, eps=eps)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden_states, mask):
        ext = (1.0 - mask[:, None, None, :].to(hidden_states.dtype)) * -10000.0
        a = self.attention(hidden_states, ext)
        h = self.attn_norm(self.dropout(self.attn_out(a)) + hidden_states)
        i = F.gelu(self.intermediate(h))
        return self.out_norm(self.dropout(self.output(i)) + h)


# ------------------------------------------------------------------------------ GPT-2 block


def new_gelu(x):
    c = math.sqrt(2.0 / math.pi)
    return 0.5 * x * (1.0 + torch.tanh(c * (x + 0.044715 * torch.pow(x, 3.0))))


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.n_head, self.n_embd = n_head, n_embd
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.attn_dropout = nn.Dropout(0.1)
        self.register_buffer("bias", torch.tril(torch.ones(block_size, block_size))
                             .view(1, 1, block_size, block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        att = self.attn_dropout(F.softmax(att, dim=-1))
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class GPT2Block(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(new_gelu(self.c_fc(self.ln_2(x))))


class GPT2(nn.Module):
    """Embeddings, one block, final norm, LM head tied to the token embedding."""

    def __init__(self, vocab=512, n_embd=256, n_head=8, block_size=128):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.drop = nn.Dropout(0.1)
        self.block = GPT2Block(n_embd, n_head, block_size)
        self.ln_f = nn.LayerNorm(n_embd)

    def forward(self, idx):
        b, t = idx.size()
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device).unsqueeze(0)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        x = self.ln_f(self.block(x))
        return F.linear(x, self.wte.weight)


# ------------------------------------------------------------------------------ CapsNet


def squash(s, dim: int = -1):
    n = s.norm(p=2, dim=dim, keepdim=True)
    n2 = n * n
    return (n2 / (1.0 + n2)) * s / (n + 1e-8)


class CapsNet(nn.Module):
    def __init__(self, conv_channels=64, primary_types=8, primary_dim=8, num_classes=10,
                 digit_dim=16, routing_iters: int = 3):
        super().__init__()
        self.primary_types, self.primary_dim = primary_types, primary_dim
        self.num_classes, self.routing_iters = num_classes, routing_iters
        self.conv1 = nn.Conv2d(1, conv_channels, 9)
        self.primary = nn.Conv2d(conv_channels, primary_types * primary_dim, 9, stride=2)
        n_caps = primary_types * 6 * 6
        self.W = nn.Parameter(0.05 * torch.randn(1, n_caps, num_classes, digit_dim, primary_dim))

    def forward(self, x):
        h = F.relu(self.conv1(x))
        p = self.primary(h)                                  # [B, types*dim, 6, 6]
        B = p.size(0)
        u = p.view(B, self.primary_types, self.primary_dim, -1).permute(0, 1, 3, 2)
        u = squash(u.reshape(B, -1, self.primary_dim))      # [B, N, 8]
        u_hat = torch.matmul(self.W, u[:, :, None, :, None]).squeeze(-1)   # [B, N, 10, 16]
        b = torch.zeros(B, u_hat.size(1), self.num_classes, 1)
        v = u_hat[:, :1]
        for i in range(self.routing_iters):
            c = F.softmax(b, dim=2)
            s = (c * u_hat).sum(dim=1, keepdim=True)         # [B, 1, 10, 16]
            v = squash(s)
            if i < self.routing_iters - 1:
                b = b + (u_hat * v).sum(dim=-1, keepdim=True)
        return v.squeeze(1).norm(p=2, dim=-1)                   # [B, 10]


# ------------------------------------------------------------------------------ factories


def _init(model, seed):
    """Random but well-scaled weights (BN statistics too, so eval-mode BN does something)."""
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _randn(seed, *shape):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g)


def make_mlp():
    torch.manual_seed(0)
    return _init(MLP(), 1), (_randn(100, 4, 64),)


def make_small_cnn():
    torch.manual_seed(0)
    return _init(SmallCNN(), 1), (_randn(101, 2, 3, 32, 32),)


def make_residual_block():
    torch.manual_seed(0)
    return _init(BasicBlock(16, 32, stride=2), 1), (_randn(102, 1, 16, 16, 16),)


def make_resnet18():
    torch.manual_seed(0)
    return _init(ResNet18(), 1), (_randn(103, 1, 3, 224, 224),)


def make_mobilenet_v2():
    torch.manual_seed(0)
    return _init(MobileNetV2(), 1), (_randn(104, 1, 3, 224, 224),)


def make_bert_layer(seq=128):
    torch.manual_seed(0)
    model = _init(BertLayer(), 1)
    mask = torch.ones(1, seq)
    mask[:, seq - seq // 4:] = 0.0          # the last quarter is padding
    return model, (_randn(105, 1, seq, 768), mask)


def make_gpt2_block(seq=64):
    torch.manual_seed(0)
    model = _init(GPT2(), 1)
    g = torch.Generator().manual_seed(106)
    return model, (torch.randint(0, 512, (1, seq), generator=g),)


def make_capsnet():
    torch.manual_seed(0)
    return _init(CapsNet(), 1), (_randn(107, 1, 1, 28, 28),)


MODELS = {"mlp": make_mlp, "small_cnn": make_small_cnn, "residual_block": make_residual_block,
          "resnet18": make_resnet18, "mobilenet_v2": make_mobilenet_v2,
          "bert_layer": make_bert_layer, "gpt2_block": make_gpt2_block,
          "capsnet": make_capsnet}
