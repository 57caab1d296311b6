"""Architectures by name (ARCHS), each built from the data set's (in_channels, num_classes, image_size),
plus `torchvision:<name>` for any torchvision classification model. Cheap to import: the network classes
(infcop.science.nets) and torch load only when a model is built."""
from __future__ import annotations

from .. import InfcopError
from .registry import Registry

ARCHS = Registry("architecture")
TORCHVISION_PREFIX = "torchvision:"


def _nets():
    from . import nets
    return nets


# signal: 2 for images (N, C, H, W), 1 for 1-D signals (N, C, L); a data set declares the same key
ARCHS.add("mlp", lambda c, k, s: _nets().MLP(c, k, s), label="MLP 256-128")
ARCHS.add("lenet5", lambda c, k, s: _nets().LeNet5(c, k, s), label="LeNet-5")
ARCHS.add("small_cnn", lambda c, k, s: _nets().SmallCNN(c, k, s), label="small CNN")
ARCHS.add("vgg11", lambda c, k, s: _nets().VGG(_nets().VGG_CFG["vgg11"], c, k, s), label="VGG-11 (BN)")
ARCHS.add("vgg16", lambda c, k, s: _nets().VGG(_nets().VGG_CFG["vgg16"], c, k, s), label="VGG-16 (BN)")
ARCHS.add("resnet20", lambda c, k, s: _nets().ResNet([16, 32, 64], [3, 3, 3], c, k, s), label="ResNet-20")
ARCHS.add("resnet18", lambda c, k, s: _nets().ResNet([64, 128, 256, 512], [2, 2, 2, 2], c, k, s),
          label="ResNet-18 (CIFAR stem)")
# The MNIST-1D paper's networks (Greydanus & Kobak 2024), for 1-D signals
ARCHS.add("mnist1d_cnn", lambda c, k, s: _nets().ConvBase1d(c, k, s), label="1-D CNN (3 conv x 25)", signal=1)
ARCHS.add("mnist1d_mlp", lambda c, k, s: _nets().MLP1d(c, k, s), label="1-D MLP 100-100", signal=1)


def arch_signal(name: str) -> int:
    """2 for a network of images, 1 for one of 1-D signals (torchvision models take images)."""
    return ARCHS.get(name).info.get("signal", 2) if name in ARCHS else 2


def allowed_archs() -> str:
    return ", ".join(ARCHS.names()) + ", or torchvision:<model name>"


def check_arch(name: str) -> None:
    if name in ARCHS or (isinstance(name, str) and name.startswith(TORCHVISION_PREFIX)
                         and len(name) > len(TORCHVISION_PREFIX)):
        return
    raise InfcopError(f"unknown arch '{name}'; known: {allowed_archs()}")


def _torchvision_model(name, in_channels, num_classes, image_size):
    import torchvision.models as tvm
    from torch import nn

    try:
        model = tvm.get_model(name, weights=None, num_classes=num_classes)
    except (ValueError, KeyError):
        known = ", ".join(sorted(tvm.list_models(module=tvm)))
        raise InfcopError(f"unknown torchvision model '{name}'; known: {known}") from None
    if in_channels != 3:  # swap the first conv for one that takes the data set's channels
        for parent in model.modules():
            for child_name, child in parent.named_children():
                if isinstance(child, nn.Conv2d):
                    setattr(parent, child_name, nn.Conv2d(
                        in_channels, child.out_channels, child.kernel_size, child.stride, child.padding,
                        child.dilation, child.groups, child.bias is not None))
                    return model
    return model


def build_model(name: str, in_channels: int, num_classes: int, image_size: int):
    check_arch(name)
    if name.startswith(TORCHVISION_PREFIX):
        return _torchvision_model(name[len(TORCHVISION_PREFIX):], in_channels, num_classes, image_size)
    return ARCHS.get(name).obj(in_channels, num_classes, image_size)


def flow_layers(model) -> list:
    """The Conv1d/Conv2d/Linear layers whose activations define the flows, in forward order (registration
    order), ResNet shortcut convs excluded."""
    from torch import nn

    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) and "shortcut" not in n.split(".")
            and "downsample" not in n.split(".")]
