import pytest
import torch

from infcop import InfcopError
from infcop.science.models import ARCHS, build_model, flow_layers


@pytest.mark.parametrize("name,shape", [("mlp", (1, 8)), ("lenet5", (1, 8)), ("small_cnn", (1, 8)),
                                        ("lenet5", (1, 28)), ("vgg11", (3, 32)), ("vgg16", (1, 28)),
                                        ("resnet20", (3, 32)), ("resnet18", (3, 32)), ("vgg16", (1, 8))])
def test_registry_models_take_the_data_sets_shape(name, shape):
    c, s = shape
    model = build_model(name, c, 7, s)
    assert model(torch.zeros(2, c, s, s)).shape == (2, 7)


def test_torchvision_model_gets_random_weights_resized_head_and_input_channels():
    model = build_model("torchvision:resnet18", 1, 5, 32)
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 5)
    assert model.conv1.in_channels == 1


def test_unknown_model_lists_known_ones():
    with pytest.raises(InfcopError, match="known: mlp, lenet5, small_cnn"):
        build_model("alexnet9", 1, 10, 8)
    with pytest.raises(InfcopError, match="unknown torchvision model"):
        build_model("torchvision:nope", 3, 10, 32)


def test_flow_layers_skip_resnet_shortcuts_and_keep_forward_order():
    names = [n for n, _ in flow_layers(build_model("resnet20", 3, 10, 32))]
    assert names[0] == "conv1" and names[-1] == "fc"
    assert not any("shortcut" in n for n in names)
    assert len(names) == 1 + 9 * 2 + 1
    assert set(ARCHS.names()) >= {"mlp", "lenet5", "small_cnn", "vgg11", "vgg16", "resnet20", "resnet18"}


# ------------------------------------------------------------------------------ networks for 1-D signals

def test_the_mnist1d_papers_networks_take_1d_signals():
    cnn, mlp = build_model("mnist1d_cnn", 1, 10, 40), build_model("mnist1d_mlp", 1, 10, 40)
    x = torch.zeros(3, 1, 40)
    assert cnn(x).shape == (3, 10) and mlp(x).shape == (3, 10)
    # the paper's ConvBase: 25 channels, 125 flattened features for length 40; its MLP: 100-100
    assert cnn.linear.in_features == 125 and [n for n, _ in flow_layers(cnn)] == ["conv1", "conv2", "conv3", "linear"]
    assert sum(p.numel() for p in cnn.parameters()) == (25 * 5 + 25) + 2 * (25 * 25 * 3 + 25) + (125 * 10 + 10)
    assert [m.out_features for m in (mlp.fc1, mlp.fc2, mlp.fc3)] == [100, 100, 10]


def test_macs_are_counted_from_the_model_as_by_hand():
    from infcop.science.flops import layer_macs, pruned_macs
    from infcop.science.masks import full_masks

    cnn = build_model("mnist1d_cnn", 1, 10, 40)
    # lengths 40 -> 19 -> 10 -> 5; per output: in_channels x kernel
    assert layer_macs(cnn, (1, 40)) == {"conv1.weight": 19 * 25 * 5, "conv2.weight": 10 * 25 * 25 * 3,
                                        "conv3.weight": 5 * 25 * 25 * 3, "linear.weight": 125 * 10}
    small = build_model("small_cnn", 1, 10, 8)  # 8x8 -> 8x8 (32) -> 8x8 (64) -> pool 4x4 -> 128 -> 10
    dense = layer_macs(small, (1, 8, 8))
    assert dense == {"features.0.weight": 64 * 32 * 9, "features.2.weight": 64 * 64 * 32 * 9,
                     "classifier.0.weight": 1024 * 128, "classifier.2.weight": 128 * 10}
    masks = full_masks(small)
    assert pruned_macs(dense, masks) == sum(dense.values())
    masks["features.2.weight"][:32] = False  # half of one layer pruned: half its MACs
    assert pruned_macs(dense, masks) == sum(dense.values()) - 64 * 64 * 32 * 9 // 2
