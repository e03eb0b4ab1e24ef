"""CI-sized variants of the torchvision architectures for `benches/coverage.py --reduced`.

Same architectures (same module types, depths, ops and attribute forms), much narrower, 10
classes (segmentation: 5), small inputs, so that every exported model.onnx is < 2 MB.

Two ways of making a model narrow:

* `shrink(model, k)`: the torchvision model is built on the meta device (no memory, so even
  regnet_y_128gf costs nothing), then every Conv2d / BatchNorm2d / Linear is rebuilt with its
  channel counts divided by k (input RGB and the class count kept; grouped and depthwise convs
  keep their kind: groups == channels stays depthwise, other groups are kept when they divide
  the new width, else reduced to the gcd). Concats, splits and residual sums stay consistent
  because torchvision's CNN widths are multiples of k (checked by a forward pass). Used for
  every CNN except ShuffleNet (whose channel halves would go odd): AlexNet, VGG, ResNet/ResNeXt/
  Wide-ResNet, DenseNet, GoogLeNet, Inception-v3, SqueezeNet, MobileNet v2/v3, MNASNet,
  EfficientNet (v1, v2), RegNet, the segmentation models and the detection backbones.
* the architecture's own constructor arguments (ShuffleNetV2 channel lists; ViT, Swin, Swin-v2,
  MaxViT, ConvNeXt embedding widths / heads / windows), keeping the depths (except Swin-S/B,
  cut to Swin-T's depths, see below).

AlexNet and VGG keep 224x224 inputs: their AdaptiveAvgPool2d((6,6)) / ((7,7)) is a 1x1
AveragePool only at the native size (smaller inputs would need an up-sampling adaptive pool
that the TorchScript exporter refuses). Swin uses 64x64 with 2x2 windows and embed_dim 8 (all stages a whole
number of windows, as 224 with 7x7; Swin-v2's continuous position bias MLP, 512 wide in
torchvision, is constant-folded by the exporters into one [1, 2w-1, 2w-1, 512] tensor per block,
so the window must stay small), MaxViT 64x64 with partition 2, ssd300 keeps 300x300.
"""

from __future__ import annotations

import math

REDUCED: dict = {}  # name -> (kind, builder() -> (model, [C,H,W], notes))


def _tv():
    import torchvision.models as tvm

    return tvm


def shrink(model, k: int, keep_out: int, k_lin: int | None = None, first_linear_k: int | None = None):
    """Rebuild Conv2d/BatchNorm2d/Linear (and a few known channel parameters) narrower by k."""
    import torch
    import torch.nn as nn

    k_lin = k_lin or k
    first_linear_k = first_linear_k or k

    def s(c, kk):
        if c == 3 or c == keep_out:
            return c
        if c % kk:
            return max(1, round(c / kk))
        return c // kk

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    first_linear = linears[0] if linears else None

    def rebuild(m):
        if isinstance(m, nn.Conv2d):
            cin, cout = s(m.in_channels, k), s(m.out_channels, k)
            g = m.groups
            if g == m.in_channels and g > 1:
                g = cin
                cout = cin * (m.out_channels // m.in_channels) if m.out_channels % m.in_channels == 0 else cout
            elif g > 1 and not (cin % g == 0 and cout % g == 0):
                g = math.gcd(math.gcd(cin, cout), g)
            new = nn.Conv2d(cin, cout, m.kernel_size, m.stride, m.padding, m.dilation, g,
                            m.bias is not None, m.padding_mode)
            nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
            if new.bias is not None:
                nn.init.normal_(new.bias, 0, 0.05)
            return new
        if isinstance(m, nn.BatchNorm2d):
            return nn.BatchNorm2d(s(m.num_features, k), m.eps, m.momentum, m.affine, m.track_running_stats)
        if isinstance(m, nn.Linear):
            fin = s(m.in_features, first_linear_k if m is first_linear else k_lin)
            fout = s(m.out_features, k_lin)
            new = nn.Linear(fin, fout, m.bias is not None)
            nn.init.kaiming_normal_(new.weight, nonlinearity="relu")
            if new.bias is not None:
                nn.init.normal_(new.bias, 0, 0.05)
            return new
        return None

    def walk(parent):
        for name, child in list(parent.named_children()):
            new = rebuild(child)
            if new is not None:
                setattr(parent, name, new)
            else:
                walk(child)

    walk(model)
    # Channel-sized parameters outside those modules.
    for mod in model.modules():
        for pname, p in list(mod.named_parameters(recurse=False)):
            if p.is_meta:
                if pname == "scale_weight":  # ssd300's L2Norm
                    mod.scale_weight = nn.Parameter(torch.full((s(p.shape[0], k),), 20.0))
                else:
                    raise RuntimeError(f"shrink: parameter {type(mod).__name__}.{pname} {list(p.shape)} left on meta")
        for bname, b in list(mod.named_buffers(recurse=False)):
            if b.is_meta:
                raise RuntimeError(f"shrink: buffer {type(mod).__name__}.{bname} left on meta")
    return model


def _meta(fn):
    import torch

    with torch.device("meta"):
        return fn()


def _meta_regnet(n, kwargs):
    """RegNet's BlockParams compute widths with tensors (not on meta): get them on the CPU by
    intercepting torchvision's _regnet, then build the network itself on meta."""
    import functools

    import torch.nn as nn
    import torchvision.models.regnet as rg

    orig = rg._regnet
    rg._regnet = lambda params, weights, progress, **kw: params
    try:
        params = getattr(rg, n)(weights=None)
    finally:
        rg._regnet = orig
    norm = functools.partial(nn.BatchNorm2d, eps=1e-05, momentum=0.1)
    return _meta(lambda: rg.RegNet(params, norm_layer=norm, **kwargs))


def _reg(name, kind, fn):
    REDUCED[name] = (kind, fn)


# Widest models: a larger k to stay under 2 MB.
K_OVERRIDE = {"regnet_y_128gf": 96, "regnet_y_32gf": 32, "regnet_x_32gf": 32, "efficientnet_v2_l": 24,
              "densenet161": 12}


def _classification():
    tvm = _tv()
    names = tvm.list_models(module=tvm)
    for n in names:
        if n.startswith(("vit_", "swin_", "maxvit", "convnext", "shufflenet")):
            continue
        k, size, k_lin, notes = 8, 64, None, {}
        if n == "alexnet":
            k, size, k_lin = 16, 224, 64
        elif n.startswith("vgg"):
            k, size, k_lin = 16, 224, 64
        elif n.startswith(("resnet", "resnext", "wide_resnet")):
            k = 32 if n == "wide_resnet101_2" else 16
        elif n.startswith("regnet"):
            k = 16 if any(t in n for t in ("16gf", "32gf", "128gf", "8gf")) else 8
        elif n.startswith("efficientnet"):
            k = 16 if n in ("efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "efficientnet_v2_m",
                            "efficientnet_v2_l") else 8
        elif n == "inception_v3":
            size = 96
        elif n.startswith("densenet"):
            k = 8
        k = K_OVERRIDE.get(n, k)

        def build(n=n, k=k, size=size, k_lin=k_lin):
            kwargs = {"num_classes": 10}
            if n == "googlenet":
                kwargs.update(aux_logits=False, init_weights=True)
            if n == "inception_v3":
                kwargs.update(aux_logits=False, init_weights=True)
            if n.startswith("regnet"):
                m = _meta_regnet(n, kwargs)
            else:
                m = _meta(lambda: tvm.get_model(n, weights=None, **kwargs))
            shrink(m, k, keep_out=10, k_lin=k_lin, first_linear_k=k)
            return m, [3, size, size], {"reduced": f"shrink k={k}" + (f", linear k={k_lin}" if k_lin else "")}

        _reg(n, "classification", build)

    # ShuffleNetV2: channel lists /4, rounded to even (the blocks split channels in halves).
    def even(c):
        return max(2, int(round(c / 4 / 2)) * 2)

    for n, chans in [("shufflenet_v2_x0_5", [24, 48, 96, 192, 1024]), ("shufflenet_v2_x1_0", [24, 116, 232, 464, 1024]),
                     ("shufflenet_v2_x1_5", [24, 176, 352, 704, 1024]), ("shufflenet_v2_x2_0", [24, 244, 488, 976, 2048])]:
        def build(n=n, chans=chans):
            from torchvision.models.shufflenetv2 import ShuffleNetV2

            c = [even(x) for x in chans]
            return ShuffleNetV2([4, 8, 4], c, num_classes=10), [3, 64, 64], {"reduced": f"stages_out_channels={c}"}

        _reg(n, "classification", build)

    # ViT: same depth and patch size, hidden 32, 4 heads, MLP 64.
    for n, (patch, layers) in {"vit_b_16": (16, 12), "vit_b_32": (32, 12), "vit_l_16": (16, 24),
                               "vit_l_32": (32, 24), "vit_h_14": (14, 32)}.items():
        def build(n=n, patch=patch, layers=layers):
            from torchvision.models.vision_transformer import VisionTransformer

            size = 56 if patch == 14 else 64
            m = VisionTransformer(image_size=size, patch_size=patch, num_layers=layers, num_heads=4,
                                  hidden_dim=32, mlp_dim=64, num_classes=10)
            return m, [3, size, size], {"reduced": f"image {size}, patch {patch}, {layers} layers, hidden 32, 4 heads, mlp 64"}

        _reg(n, "classification", build)

    # Swin / Swin-v2: same depths, embed_dim 8, heads [1,2,4,8], window 2x2, 64x64 input.
    # swin_s/swin_b keep only 6 blocks in stage 3 (as swin_t): their 18 blocks make a >2 MB graph
    # even at embed_dim 8 (13k nodes in the TorchScript export, per-node metadata in dynamo's).
    for n, depths in {"swin_t": [2, 2, 6, 2], "swin_s": [2, 2, 6, 2], "swin_b": [2, 2, 6, 2],
                      # Swin-v2 blocks export to ~550 TorchScript nodes each (continuous position
                      # bias, masks): 2 blocks per stage to stay under 2 MB.
                      "swin_v2_t": [2, 2, 2, 2], "swin_v2_s": [2, 2, 2, 2], "swin_v2_b": [2, 2, 2, 2]}.items():
        def build(n=n, depths=depths):
            from torchvision.models import swin_transformer as st

            kw = {}
            if "v2" in n:
                kw = dict(block=st.SwinTransformerBlockV2, downsample_layer=st.PatchMergingV2)
            m = st.SwinTransformer(patch_size=[4, 4], embed_dim=8, depths=depths, num_heads=[1, 2, 4, 8],
                                   window_size=[2, 2], stochastic_depth_prob=0.2, num_classes=10, **kw)
            return m, [3, 64, 64], {"reduced": f"embed_dim 8, depths {depths}, heads [1,2,4,8], window 2, input 64"}

        _reg(n, "classification", build)

    def build_maxvit():
        from torchvision.models.maxvit import MaxVit

        m = MaxVit(input_size=(64, 64), stem_channels=8, partition_size=2, block_channels=[8, 16, 24, 32],
                   block_layers=[2, 2, 5, 2], head_dim=4, stochastic_depth_prob=0.2, num_classes=10)
        return m, [3, 64, 64], {"reduced": "stem 8, channels [8,16,24,32], layers [2,2,5,2], head_dim 4, partition 2, input 64"}

    _reg("maxvit_t", "classification", build_maxvit)

    for n, depths in {"convnext_tiny": [3, 3, 9, 3], "convnext_small": [3, 3, 27, 3],
                      "convnext_base": [3, 3, 27, 3], "convnext_large": [3, 3, 27, 3]}.items():
        def build(n=n, depths=depths):
            from torchvision.models.convnext import CNBlockConfig, ConvNeXt

            ch = [8, 16, 32, 64] if n == "convnext_tiny" else [4, 8, 16, 32]
            setting = [CNBlockConfig(ch[i], ch[i + 1] if i < 3 else None, depths[i]) for i in range(4)]
            return ConvNeXt(setting, stochastic_depth_prob=0.1, num_classes=10), [3, 64, 64], \
                {"reduced": f"channels {ch}, depths {depths}"}

        _reg(n, "classification", build)


def _segmentation():
    tvm = _tv()
    for n in tvm.list_models(module=tvm.segmentation):
        k = 8 if "mobilenet" in n else 16

        def build(n=n, k=k):
            import coverage as cov

            inner = _meta(lambda: tvm.get_model(n, weights=None, weights_backbone=None, num_classes=5, aux_loss=False))
            shrink(inner, k, keep_out=5)
            return cov.OutWrapper(inner, "out"), [3, 64, 64], {"reduced": f"shrink k={k}, 5 classes"}

        _reg(n, "segmentation", build)


def _detection():
    tvm = _tv()
    import coverage as cov

    for n, size, same in cov.DETECTION_BACKBONES:
        k = 8 if "mobilenet" in n else 16
        rsize = 300 if n == "ssd300_vgg16" else 64

        def build(n=n, k=k, rsize=rsize, same=same):
            det = _meta(lambda: tvm.get_model(n, weights=None, weights_backbone=None, num_classes=5))
            bb = det.backbone
            shrink(bb, k, keep_out=-1)
            return cov.OutWrapper(bb), [3, rsize, rsize], {"reduced": f"shrink k={k}", "same_backbone_as": same}

        _reg(n + "_backbone", "detection_backbone", build)


_classification()
_segmentation()
_detection()


def build_reduced(name: str, spec: dict):
    kind, fn = REDUCED[name]
    model, chw, notes = fn()
    return model, chw, notes
