"""The code this package is measured against, as the book writes it: the seed notebook's concise loop
and the textbook's from-scratch loop ("linear regression implementation from scratch", d2l 3.2).

Both take the same data as the package's estimators and return (w, b) so that the benchmark can
check it times the same math. They are not used by the package itself.
"""

import random

import torch
from torch import nn
from torch.utils import data


def notebook_loop(features, labels, *, lr=0.03, batch_size=10, num_epochs=3, batches=None):
    """The d2l notebook's cells, in order: DataLoader(shuffle=True), nn.Linear, nn.MSELoss, torch.optim.SGD.
    ``batches``: another iterable of the same shuffled minibatches in place of the DataLoader."""
    dataset = data.TensorDataset(features, labels)
    data_iter = data.DataLoader(dataset, batch_size, shuffle=True) if batches is None else batches
    net = nn.Sequential(nn.Linear(features.shape[1], 1))
    net[0].weight.data.normal_(0, 0.01)
    net[0].bias.data.fill_(0)
    loss = nn.MSELoss()
    trainer = torch.optim.SGD(net.parameters(), lr=lr)
    for epoch in range(num_epochs):
        for X, y in data_iter:
            l = loss(net(X), y)
            trainer.zero_grad()
            l.backward()
            trainer.step()
        l = loss(net(features), labels)  # the notebook prints this each epoch
        f"epoch {epoch + 1}, loss {l:f}"
    return net[0].weight.data.reshape(-1), net[0].bias.data


def data_iter(batch_size, features, labels):
    num_examples = len(features)
    indices = list(range(num_examples))
    random.shuffle(indices)
    for i in range(0, num_examples, batch_size):
        batch_indices = torch.tensor(indices[i : min(i + batch_size, num_examples)])
        yield features[batch_indices], labels[batch_indices]


def linreg(X, w, b):
    return torch.matmul(X, w) + b


def squared_loss(y_hat, y):
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def sgd(params, lr, batch_size):
    with torch.no_grad():
        for param in params:
            param -= lr * param.grad / batch_size
            param.grad.zero_()


def textbook_scratch(features, labels, *, lr=0.03, batch_size=10, num_epochs=3):
    """The textbook's training loop from scratch, with its data_iter, linreg, squared_loss and sgd."""
    w = torch.normal(0, 0.01, size=(features.shape[1], 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    for epoch in range(num_epochs):
        for X, y in data_iter(batch_size, features, labels):
            l = squared_loss(linreg(X, w, b), y)
            l.sum().backward()
            sgd([w, b], lr, batch_size)
        with torch.no_grad():
            train_l = squared_loss(linreg(features, w, b), labels)
            f"epoch {epoch + 1}, loss {float(train_l.mean()):f}"
    return w.detach().reshape(-1), b.detach()
