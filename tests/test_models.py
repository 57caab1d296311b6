import pytest
import torch

from infcop import InfcopError
from infcop.models import ARCHS, build_model, flow_layers


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
