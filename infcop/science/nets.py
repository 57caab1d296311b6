"""The network classes behind the architecture registry (infcop.science.models). Every model takes (in_channels,
num_classes, image_size) from the data set."""
from __future__ import annotations

import torch
from torch import nn



def _flat_features(features: nn.Module, in_channels: int, image_size: int) -> int:
    with torch.no_grad():
        return features(torch.zeros(1, in_channels, image_size, image_size)).flatten(1).shape[1]


class MLP(nn.Module):
    def __init__(self, in_channels, num_classes, image_size):
        super().__init__()
        d = in_channels * image_size * image_size
        self.fc1, self.fc2, self.fc3 = nn.Linear(d, 256), nn.Linear(256, 128), nn.Linear(128, num_classes)

    def forward(self, x):
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc3(torch.relu(self.fc2(x)))


class LeNet5(nn.Module):
    def __init__(self, in_channels, num_classes, image_size):
        super().__init__()
        # padding 2 on both convs so that 8x8 digits survive two poolings
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True))
        d = _flat_features(self.features, in_channels, image_size)
        self.classifier = nn.Sequential(nn.Linear(d, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                        nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class SmallCNN(nn.Module):
    """Sized for 8x8 digits: two 3x3 convs, one pooling, two linear layers."""

    def __init__(self, in_channels, num_classes, image_size):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True))
        d = _flat_features(self.features, in_channels, image_size)
        self.classifier = nn.Sequential(nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


VGG_CFG = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """CIFAR-style VGG with batch norm; ceil-mode pooling lets 28x28 and 8x8 inputs through too."""

    def __init__(self, cfg, in_channels, num_classes, image_size):
        super().__init__()
        layers, c = [], in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            # named `shortcut`: flows skip these convs (DESIGN: shortcut convs excluded)
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style ResNet: 3x3 stem, no stem pooling."""

    def __init__(self, widths, blocks, in_channels, num_classes, image_size):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages, c = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                stages.append(BasicBlock(c, w, 2 if (i > 0 and j == 0) else 1))
                c = w
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        return self.fc(self.pool(self.layers(x)).flatten(1))


class ConvBase1d(nn.Module):
    """The MNIST-1D paper's CNN (its `ConvBase`): three 1-D convs of 25 channels (kernel 5 / 3 / 3, stride 2,
    padding 1) with ReLU, then a linear head on the flattened features (25 x 5 = 125 for length 40)."""

    def __init__(self, in_channels, num_classes, length, channels: int = 25):
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        with torch.no_grad():
            d = self._features(torch.zeros(1, in_channels, length)).shape[1]
        self.linear = nn.Linear(d, num_classes)

    def _features(self, x):
        return self.conv3(self.conv2(self.conv1(x).relu()).relu()).relu().flatten(1)

    def forward(self, x):
        return self.linear(self._features(x))


class MLP1d(nn.Module):
    """The MNIST-1D paper's MLP: two hidden layers of 100 units with ReLU."""

    def __init__(self, in_channels, num_classes, length, hidden: int = 100):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(in_channels * length, hidden), nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, num_classes)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x.flatten(1))))))


class Standardised(nn.Module):
    """A network that takes raw inputs (a loaded ticket): it standardises them with the training split's
    per-channel mean and std, as its training data was, then runs the architecture itself (`net`)."""

    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x):
        return self.net((x - self.mean) / self.std)
