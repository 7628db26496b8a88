"""The built-in CLIP's image trunk: where each object is, kept up to the pooling (spec section 5).

A small convolutional network at fine resolution (a 32 x 32 grid at 64 px) ends in two maps per
object of the vocabulary: a *heat map* (logits over the grid) and a *depth map*. The pooling is
the soft-argmax of each heat map: for object c, p = softmax over the grid of its heat map gives

- its centre (x_c, y_c) = sum p * (x, y) in image coordinates scaled to [-1, 1],
- its depth d_c = sum p * depth map,
- its presence s_c = sigmoid(logsumexp(heat map) - PRESENCE_OFFSET),

and the trunk's output is, per object, (s_c, s_c * x_c, s_c * y_c, s_c * d_c): 4 numbers a slot,
``num_features`` = 4 x objects, minus their mean over the base-training images. open_clip's
``TimmModel`` adds the projection (linear, per the JSON config) on top, so the pooled embedding
carries, for each object present, where it is.

Why this design (docs/research.md, "The built-in CLIP"): the earlier tower (open_clip's
ModifiedResNet at 64 px) ends in a 2 x 2 grid pooled by one attention query, and no training
we tried made its pooled embedding say where objects are. This trunk, taught each object's
projected centre, depth and presence (from the metadata, ``sim/camera.py``), finds the objects
of unseen test scenes to 4.9 px (left/right of a pair 0.895), and fine-tuning reads the
relations from it.

The trunk is registered as a timm model (``rls3_locnet``), the way open_clip takes a custom image
tower: the JSON config names it in ``vision_cfg.timm_model_name``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models import register_model
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

DEPTH_OFFSET_M = 2.0  # the depth maps read depth - 2 m (``pretrain.DEPTH_CENTRE_M``)
PRESENCE_OFFSET = 8.0  # logsumexp over a 32 x 32 grid of zeros is log(1024) ~ 6.9
FEATURES_PER_OBJECT = 4  # presence, presence * (x, y, depth)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class LocNet(nn.Module):
    """Heat and depth maps per object, pooled by soft-argmax into per-object slots."""

    slot_mean: torch.Tensor

    def __init__(self, objects: int = 9, width: int = 64, stem_width: int = 32) -> None:
        super().__init__()
        self.objects = objects
        self.num_features = FEATURES_PER_OBJECT * objects  # what open_clip's head projects
        self.default_cfg: dict[str, Any] = {}  # no pool_size: the features are a flat vector
        self.features = nn.Sequential(
            _conv(3, stem_width),  # full resolution
            _conv(stem_width, width, stride=2),  # the grid: half resolution, 32 x 32 at 64 px
            _conv(width, width),
            _conv(width, width),
        )
        self.maps_head = nn.Conv2d(width, 2 * objects, 1)  # heat logits, then depths
        # The mean slot vector over the base-training images (set by base training), subtracted
        # in ``forward`` so that the image embedding has no constant part a text-only prior
        # could use. A design choice: its effect on the control was not measured apart.
        self.register_buffer("slot_mean", torch.zeros(self.num_features))

    def maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Heat-map logits and depth maps, each (B, objects, H', W')."""
        out = self.maps_head(self.features(x))
        return out[:, : self.objects], out[:, self.objects :]

    def pool(
        self, heat: torch.Tensor, depth: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Soft-argmax: presence logits (B, C), centres (B, C, 2) in [-1, 1], depths (B, C)."""
        h, w = heat.shape[-2:]
        flat = heat.flatten(2)
        p = flat.softmax(dim=2)
        ys = torch.linspace(-1 + 1 / h, 1 - 1 / h, h, device=heat.device, dtype=heat.dtype)
        xs = torch.linspace(-1 + 1 / w, 1 - 1 / w, w, device=heat.device, dtype=heat.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1)  # (HW, 2): x, y
        centres = p @ grid
        depths = (p * depth.flatten(2)).sum(dim=2)
        presence = flat.logsumexp(dim=2) - PRESENCE_OFFSET
        return presence, centres, depths

    def slots(self, heat: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """The trunk's output: per object (s, s*x, s*y, s*depth), flattened to (B, 4C)."""
        presence, centres, depths = self.pool(heat, depth)
        s = torch.sigmoid(presence)
        slots = torch.cat([s[..., None], s[..., None] * centres, (s * depths)[..., None]], dim=2)
        return slots.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.slots(*self.maps(x)) - self.slot_mean

    # timm's classifier interface, as open_clip's TimmModel calls it: there is no classifier.
    def reset_classifier(self, num_classes: int = 0, global_pool: str | None = None) -> None:
        if num_classes:
            raise ValueError("rls3_locnet has no classifier; use it as an open_clip trunk")


@register_model
def rls3_locnet(pretrained: bool = False, **kwargs: Any) -> LocNet:
    """The built-in CLIP's trunk (9 objects); never pretrained: there is nothing to download."""
    if pretrained:
        raise ValueError("rls3_locnet has no pretrained weights; base-train it (rls3 pretrain-vlm)")
    for unused in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
        kwargs.pop(unused, None)
    return LocNet(**kwargs)


def localisation_loss(
    trunk: LocNet,
    heat: torch.Tensor,
    depth: torch.Tensor,
    centres: torch.Tensor,
    depths: torch.Tensor,
    present: torch.Tensor,
) -> torch.Tensor:
    """Image-only base-training loss: each present object's centre and depth, and presence.

    ``centres`` (B, C, 2) in [-1, 1], ``depths`` (B, C) and ``present`` (B, C, 0/1) come from
    the metadata's projections; absent objects contribute only to the presence term.
    """
    logits, pred_centres, pred_depths = trunk.pool(heat, depth)
    n = present.sum().clamp(min=1)
    where = F.smooth_l1_loss(pred_centres, centres, reduction="none").sum(2)
    far = F.smooth_l1_loss(pred_depths, depths, reduction="none")
    located = ((where + far) * present).sum() / n
    return located + F.binary_cross_entropy_with_logits(logits, present)


# ------------------------------------------------------------------------ as a transformers tower

OBJECT_TOKEN_FEATURES = 6  # per object token: presence, presence * (x, y, depth, X, Y)


class LocVisionConfig(PretrainedConfig):
    """The built-in PaliGemma's vision tower: ``LocNet`` as a transformers model.

    ``hidden_size`` is what one image token holds (the projector's input): the object's one-hot
    identity and its slot. ``image_size`` / ``patch_size`` is the heat maps' grid (32 x 32 at
    64 px); PaliGemmaConfig reads both.
    """

    model_type = "rls3_locnet_vision"

    def __init__(
        self,
        objects: int = 9,
        width: int = 64,
        stem_width: int = 32,
        image_size: int = 64,
        patch_size: int = 2,
        **kwargs: Any,
    ) -> None:
        self.objects = objects
        self.width = width
        self.stem_width = stem_width
        self.image_size = image_size
        self.patch_size = patch_size
        self.hidden_size = objects + OBJECT_TOKEN_FEATURES
        super().__init__(**kwargs)


class LocVisionModel(PreTrainedModel):
    """One image token per object of the vocabulary: ``[one-hot(c), s_c, s_c x_c, s_c y_c,
    s_c d_c]``, the ``LocNet`` slot of object c (where it is, if present) with its identity.

    The soft-argmax over the trunk's 32 x 32 grid keeps sub-pixel positions; the language model
    finds an object's token by its identity (PaliGemma's prefix attention) and reads where it is.
    """

    config_class = LocVisionConfig
    config: LocVisionConfig
    base_model_prefix = "vision_model"
    main_input_name = "pixel_values"
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def __init__(self, config: LocVisionConfig) -> None:
        super().__init__(config)
        self.trunk = LocNet(config.objects, config.width, config.stem_width)
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's own initialisation (the trunk is trained from scratch)."""

    def tokens(self, heat: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """The image tokens (B, objects, objects + 6) from the trunk's maps."""
        slots = self.trunk.slots(heat, depth).unflatten(1, (self.config.objects, -1))
        # The camera frame up to the focal length: image x and y times the depth in metres.
        metres = slots[..., 3:4] + slots[..., 0:1] * DEPTH_OFFSET_M
        camera = slots[..., 1:3] * metres
        identity = torch.eye(self.config.objects, device=slots.device, dtype=slots.dtype)
        return torch.cat([identity.expand(slots.shape[0], -1, -1), slots, camera], dim=2)

    def forward(self, pixel_values: torch.Tensor, **kwargs: Any) -> BaseModelOutput:
        heat, depth = self.trunk.maps(pixel_values)
        return BaseModelOutput(last_hidden_state=self.tokens(heat, depth))


AutoConfig.register(LocVisionConfig.model_type, LocVisionConfig)
AutoModel.register(LocVisionConfig, LocVisionModel)
