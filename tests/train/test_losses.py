import torch

from sslx.train.losses import accuracy, cross_entropy


def test_losses_on_known_inputs():
    logits = torch.tensor([[10.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    labels = torch.tensor([0, 3])
    expected = (torch.log1p(3 * torch.exp(torch.tensor(-10.0))) + torch.log(torch.tensor(4.0))) / 2
    assert torch.isclose(cross_entropy(logits, labels), expected)
    assert accuracy(logits, labels).item() == 0.5
    assert cross_entropy(logits.bfloat16(), labels).dtype == torch.float32
