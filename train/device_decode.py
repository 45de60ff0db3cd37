"""Decoding on the training device (`sslx train --decode gpu`): the loader workers send the
JPEG bytes and each view's crop box, and the main process decodes the batch with nvJPEG
(`torchvision.io.decode_jpeg(device="cuda")`) and crops, resizes and flips it there.

Why: one CPU worker decodes and crops about 1,100 patches/s at 224 px, so 15 workers
cannot feed an H200 (docs/benchmarks.md, "Can the loader feed the GPU?"). The boxes and
flips are the CPU loader's own, drawn by the same functions from the same seed streams
(`ShardStream(encoded=True)`), so a run sees the same crops of the same samples in the
same order either way. The pixels agree to within JPEG decoder tolerance, not bit for
bit: the CPU path decodes large crops at a reduced size (libjpeg's DCT scaling) and
resizes with OpenCV's area or bilinear filter, this one decodes in full and resizes with
`roi_align` (bilinear samples at the pixel centres, averaged over each output pixel when
shrinking). On a CPU device the same code decodes in the main process (used by tests).
"""

from __future__ import annotations

import warnings

import torch
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.ops import roi_align

from sslx.train.batches import Batch, View, undecodable


def decode_on_device(batch: Batch, device: torch.device) -> Batch:
    """The loader's encoded batch decoded and cropped on `device`: images uint8 (b, S, S, 3)
    there (channels-last memory, as the host path's), undecodable samples left out and
    counted as the CPU loader counts them."""
    encoded = batch.encoded
    images = _decode(encoded.data, device)
    side = encoded.side
    good = [im is not None and im.shape == (3, side, side) for im in images]
    keep = [i for i, ok in enumerate(good) if ok]
    errors = [undecodable(int(batch.index[i]), side) for i, ok in enumerate(good) if not ok]
    index = batch.index[keep]
    if keep:
        pixels = torch.stack([images[i] for i in keep]).float()
    else:
        pixels = torch.zeros((0, 3, side, side), device=device)
    rendered = [
        crop_resize(pixels, encoded.boxes[v, keep].to(device), size)
        for v, size in enumerate(encoded.sizes)
    ]
    views = [
        View(image, view.params[keep]) for image, view in zip(rendered, batch.views, strict=False)
    ]
    image = views[0].image if views else rendered[0]
    bad, errors = batch.bad + len(images) - len(keep), batch.errors + errors
    return Batch(image, index, batch.label, bad, errors, views)


def crop_resize(pixels: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """Box (x0, y0, w, h, flip) of each image of `pixels` (float (n, 3, H, W)), resized to
    size x size and flipped where asked: uint8 (n, S, S, 3), channels-last."""
    n = len(pixels)
    if n == 0:
        return torch.zeros((0, size, size, 3), dtype=torch.uint8, device=pixels.device)
    x0, y0, w, h, flip = boxes.to(pixels.dtype).unbind(1)
    first = torch.arange(n, device=pixels.device, dtype=pixels.dtype)  # image of each box
    rois = torch.stack([first, x0, y0, x0 + w, y0 + h], 1)
    # aligned=True: box edges are pixel edges, samples sit at pixel centres, as in OpenCV.
    out = roi_align(pixels, rois, size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    out = torch.where(flip.bool().view(n, 1, 1, 1), out.flip(-1), out)
    return out.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _decode(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """RGB uint8 (3, H, W) per JPEG, None where it does not decode: the batch in one call,
    and one by one only when that call fails, to find which."""
    where = "cuda" if device.type == "cuda" else "cpu"
    with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders for torchcodec
        warnings.simplefilter("ignore", DeprecationWarning)
        return _decode_all(data, where, device)


def _decode_all(data: list[torch.Tensor], where: str, device: torch.device):
    try:
        out = decode_jpeg(data, mode=ImageReadMode.RGB, device=where)
        return [image.to(device) for image in out]
    except RuntimeError:
        images: list[torch.Tensor | None] = []
        for jpeg in data:
            try:
                images.append(decode_jpeg(jpeg, mode=ImageReadMode.RGB, device=where).to(device))
            except RuntimeError:
                images.append(None)
        return images
