"""The CLIP family through open_clip (spec section 5; the paper's eq. 1 and section 4.4).

Models come from open_clip's own factory, tokenizer and transforms:

- the built-in small model is ``BUILTIN_MODEL``, an open_clip JSON config shipped in
  ``benchmark/vlm/clip/configs/`` and registered with ``open_clip.add_model_config``: a custom image
  trunk that keeps where each object is up to the pooling (``vlm.locnet``: heat and depth maps
  per object on a 32 x 32 grid, pooled by soft-argmax into per-object slots; registered as a timm
  model, which open_clip's ``TimmModel`` wraps with a linear projection) and a 2-layer, width-64
  text transformer over open_clip's own BPE vocabulary (which ships inside open_clip);
- a checkpoint directory in open_clip's local format (``open_clip_config.json`` plus
  ``*.safetensors``; what ``ClipVLM.save`` writes, and what an open_clip hub snapshot holds)
  loads through ``local-dir:``;
- real weights: any open_clip architecture name plus a local ``.safetensors`` file, or a cache
  directory holding one.

Only ``.safetensors`` weights are read, so loading never unpickles anything.

Locked-image tuning (LiT, Zhai et al. 2022), ``ClipVLMConfig.lock_image``: fine-tuning keeps the
image trunk fixed, so its output is a function of the image and the trunk's weights alone:
``locked_features`` computes it once per image and serves it again, to ``evaluate`` (the fixed
validation and test sets, an episode's samples) and to ``finetune`` (the batch the episodes
made), keyed by a digest of the trunk's state taken at every call. Every epoch then costs only
the projection and the text tower. For a timm tower (the built-in one) the trunk is
locked and its projection trains; for other towers the whole image tower is locked. The paper
fine-tunes the whole CLIP, which is ``lock_image: false``.

Loss (eq. 1, NegCLIP form, spec section 5): for N images with features z_i and 3N texts (the N
positives w_i, then the N term-swapped and the N order-swapped negatives),
``L = (L_i2t + L_t2i) / 2`` where ``L_i2t`` is the cross-entropy of image i over all 3N texts
with target w_i, and ``L_t2i`` that of positive w_i over the N images with target z_i. Without
negatives it is open_clip's ``ClipLoss``. A sample's contribution is
``(ce_i2t_i + ce_t2i_i) / 2``, so L is the mean of the contributions over the group the loss is
computed on: the whole episode in ``evaluate`` (groups of ``eval_batch_size``), a minibatch in
``finetune``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from open_clip.transformer import text_global_pool
from PIL import Image
from safetensors.torch import save_file
from torchvision.transforms import CenterCrop, Resize

from benchmark.config import ClipVLMConfig
from benchmark.fileio import atomic_directory
from benchmark.quiet import expected_random_init
from benchmark.samples import Sample, progress
from benchmark.vlm.base import (
    VLM,
    autocast,
    chunks,
    default_device,
    missing_keys,
    module_digest,
    require_path,
    seed_everything,
)

BUILTIN_MODEL = "RLS3-CLIP-Loc"
CONFIG_DIR = Path(__file__).parent / "configs"
CONFIG_FILE = "open_clip_config.json"  # open_clip's local-dir format
WEIGHTS_FILE = "open_clip_model.safetensors"
MAX_LOGIT_SCALE = math.log(100)  # open_clip's training clamps the temperature here
MAX_CACHED_IMAGES = 100_000  # locked-trunk features kept per model (36 floats each built-in)


def register_builtin() -> None:
    """Register the package's open_clip configs and its timm trunk (idempotent)."""
    import benchmark.vlm.locnet  # noqa: F401  (registers ``rls3_locnet`` with timm)

    if BUILTIN_MODEL not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_DIR / f"{BUILTIN_MODEL}.json")


@dataclass(frozen=True)
class ClipResult:
    """One sample's evaluation: its loss contribution and its cosine similarities."""

    loss: float  # contribution to eq. 1: (ce_i2t + ce_t2i) / 2; L is the mean over samples
    sim_positive: float
    sim_term_swapped: float
    sim_order_swapped: float
    correct: bool  # the positive scores above both negatives

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def negclip_loss_terms(
    image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Per-sample contributions to eq. 1 in the NegCLIP form (shape N; their mean is L).

    ``image_features`` (N, d) and ``text_features`` (kN, d), both L2-normalised; the first N
    texts are the positives, the other (k - 1)N the negatives.
    """
    n = image_features.shape[0]
    if text_features.shape[0] % n or text_features.shape[0] < n:
        raise ValueError(f"need kN texts for N={n} images, got {text_features.shape[0]}")
    labels = torch.arange(n, device=image_features.device)
    logits_i2t = logit_scale * image_features @ text_features.T  # N x kN
    logits_t2i = logit_scale * text_features[:n] @ image_features.T  # N x N
    ce_i2t = F.cross_entropy(logits_i2t, labels, reduction="none")
    ce_t2i = F.cross_entropy(logits_t2i, labels, reduction="none")
    return (ce_i2t + ce_t2i) / 2


def negclip_loss(
    image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor
) -> torch.Tensor:
    """Eq. 1 in the NegCLIP form (the mean of ``negclip_loss_terms``)."""
    return negclip_loss_terms(image_features, text_features, logit_scale).mean()


def similarities(image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of each image to its own k texts: (N, k), column 0 the positive."""
    n = image_features.shape[0]
    texts = text_features.reshape(-1, n, text_features.shape[1])  # k x N x d
    return torch.einsum("nd,knd->nk", image_features, texts)


def accuracy_mask(sims: torch.Tensor) -> torch.Tensor:
    """True where the positive (column 0) scores strictly above every negative."""
    return (sims[:, :1] > sims[:, 1:]).all(dim=1)


def sample_texts(samples: Sequence[Sample]) -> list[str]:
    """The 3N texts of a batch: positives, then term-swapped, then order-swapped negatives."""
    return (
        [s.record.caption for s in samples]
        + [s.record.term_swapped for s in samples]
        + [s.record.order_swapped for s in samples]
    )


def trim_padding(tokens: torch.Tensor) -> torch.Tensor:
    """Token ids without the padding columns that every row has (pad id 0): the batch padded
    to its longest text instead of the context length."""
    longest = int((tokens != 0).sum(dim=1).max()) if tokens.numel() else 0
    return tokens[:, : max(longest, 1)]


def image_key(image: np.ndarray) -> bytes:
    """A content digest of one image (its shape, dtype and pixels)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.shape}{image.dtype}".encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.digest()


def _find_weights(directory: Path) -> Path:
    """The open_clip safetensors checkpoint in a directory or a hub cache tree."""
    direct = directory / WEIGHTS_FILE
    if direct.is_file():
        return direct
    found = sorted(directory.rglob("*.safetensors"))
    preferred = [
        p for p in found if p.name in (WEIGHTS_FILE, "open_clip_pytorch_model.safetensors")
    ]
    if preferred or found:
        return (preferred or found)[0]
    raise FileNotFoundError(
        f"no .safetensors checkpoint in {directory} (only safetensors weights are loaded)"
    )


class ClipVLM(VLM):
    """An open_clip model with its tokenizer and inference transform."""

    family: ClassVar[str] = "clip"

    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: Any,
        tokenizer: Any,
        model_cfg: dict[str, Any],
        config: ClipVLMConfig | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.device = device or default_device()
        # open_clip's models (CLIP, CustomTextCLIP) share an untyped API: encode_image, ...
        self.model: Any = model.to(self.device)
        # open_clip builds models in training mode, where a forward pass (``features``) would
        # use batch statistics and update the BatchNorm buffers; inference is the default,
        # and ``finetune`` switches to training and back.
        self.model.eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.model_cfg = model_cfg
        self.config = config or ClipVLMConfig()
        # locked-trunk features by image digest, valid for the trunk state ``_cached_trunk``
        self._trunk_cache: dict[bytes, torch.Tensor] = {}
        self._cached_trunk: str | None = None
        # during ``finetune``: (token id -> row, the rows the call's texts use), trained in place
        # of the whole token embedding (``_vocabulary_rows``)
        self._rows: tuple[torch.Tensor, torch.nn.Parameter] | None = None

    # ------------------------------------------------------------------ building and loading
    @classmethod
    def builtin(
        cls, config: ClipVLMConfig | None = None, device: torch.device | None = None
    ) -> ClipVLM:
        """The built-in small model, freshly initialised (seeded by ``config.seed``)."""
        register_builtin()
        config = config or ClipVLMConfig()
        return cls._create(BUILTIN_MODEL, None, config, device)

    @classmethod
    def random(
        cls,
        arch: str,
        image_size: int | None = None,
        config: ClipVLMConfig | None = None,
        device: torch.device | None = None,
    ) -> ClipVLM:
        """An open_clip architecture (e.g. ``ViT-B-32``) randomly initialised (seeded by
        ``config.seed``), at ``image_size`` px if given: full-size models without a download,
        for the tests (``save`` writes them in open_clip's local format) and ``rls3 perf gpu``."""
        register_builtin()
        config = config or ClipVLMConfig()
        seed_everything(config.seed)
        kwargs = {} if image_size is None else {"force_image_size": image_size}
        with expected_random_init():
            model, _, preprocess = open_clip.create_model_and_transforms(arch, **kwargs)
        model_cfg = json.loads(json.dumps(open_clip.get_model_config(arch)))  # a deep copy
        if image_size is not None:
            model_cfg["vision_cfg"]["image_size"] = image_size
        return cls(model, preprocess, open_clip.get_tokenizer(arch), model_cfg, config, device)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        arch: str | None = None,
        config: ClipVLMConfig | None = None,
        device: torch.device | None = None,
    ) -> ClipVLM:
        """Load a checkpoint from a local path (no download, ever).

        ``path`` is a directory in open_clip's local format (``open_clip_config.json`` and a
        ``.safetensors`` file, e.g. one written by ``save``), or, with ``arch`` an open_clip
        architecture name (e.g. ``ViT-B-32``), a ``.safetensors`` file or a directory (a hub
        cache) holding one; or a base model that ``pointer.record`` wrote, which loads the
        checkpoint it records.
        """
        from benchmark.vlm.pointer import resolve

        register_builtin()
        config = config or ClipVLMConfig()
        path, arch = resolve(path, arch)
        p = require_path(path, "CLIP checkpoint")
        if p.is_dir() and (p / CONFIG_FILE).is_file():
            _find_weights(p)  # fail clearly rather than let open_clip fall back to random init
            return cls._create(f"local-dir:{p}", None, config, device)
        if arch is None:
            raise ValueError(
                f"{p} is not an open_clip checkpoint directory (no {CONFIG_FILE}); "
                "name its architecture (arch=, e.g. ViT-B-32)"
            )
        weights = _find_weights(p) if p.is_dir() else p
        if weights.suffix != ".safetensors":
            raise ValueError(f"{weights}: only .safetensors checkpoints are loaded (no unpickling)")
        return cls._create(arch, str(weights), config, device)

    @classmethod
    def _create(
        cls, name: str, pretrained: str | None, config: ClipVLMConfig, device: torch.device | None
    ) -> ClipVLM:
        seed_everything(config.seed)
        random_init = name == BUILTIN_MODEL  # built without weights on purpose: no warning
        with expected_random_init() if random_init else contextlib.nullcontext():
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=pretrained
            )
        tokenizer = open_clip.get_tokenizer(name)
        if name.startswith("local-dir:"):
            saved = json.loads((Path(name.removeprefix("local-dir:")) / CONFIG_FILE).read_text())
            model_cfg = saved["model_cfg"]
        else:
            model_cfg = open_clip.get_model_config(name)
        return cls(model, preprocess, tokenizer, model_cfg, config, device)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``open_clip_config.json`` and ``open_clip_model.safetensors`` (atomically)."""
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        cfg = {"model_cfg": self.model_cfg, "preprocess_cfg": self.model.visual.preprocess_cfg}
        with atomic_directory(path) as tmp:
            save_file(state, str(tmp / WEIGHTS_FILE))
            (tmp / CONFIG_FILE).write_text(json.dumps(cfg, indent=2, default=list) + "\n")
        return Path(path)

    # ------------------------------------------------------------------ tensors
    def images_tensor(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """A batch of HxWx3 uint8 images through open_clip's inference transform."""
        return torch.stack([self.preprocess(Image.fromarray(im)) for im in images]).to(self.device)

    def texts_tensor(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids of ``texts`` from open_clip's tokenizer."""
        return self.tokenizer(list(texts)).to(self.device)

    def features(
        self, images: torch.Tensor, texts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised image and text features and the logit scale exp(t) (eq. 1's 1/tau)."""
        return self._features(images, texts, self.model.encode_image)

    def _features(
        self, images: torch.Tensor, texts: torch.Tensor, encode_image: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``features`` with ``encode_image`` (the whole tower, or the part after a locked one)."""
        with autocast(self.device):
            image_features = F.normalize(encode_image(images), dim=-1)
            text_features = self.encode_texts(texts)
        return image_features.float(), text_features.float(), self.model.logit_scale.exp()

    def encode_texts(self, tokens: torch.Tensor) -> torch.Tensor:
        """Normalised text features of token ids, each distinct row encoded once, the batch
        padded to its longest text where the tower allows (``_text_tower``)."""
        distinct, inverse = torch.unique(tokens, dim=0, return_inverse=True)
        return self._text_tower(distinct)[inverse]

    def _text_tower(self, tokens: torch.Tensor) -> torch.Tensor:
        """open_clip's ``CLIP.encode_text`` (normalised) on the batch padded to its longest text.

        Under a causal mask with end-of-text pooling, the pooled output depends only on the
        tokens up to the end of the text, so the padding columns after it change nothing; the
        built-in model's captions fill at most 20 of its 24 positions. Other text towers (a
        bidirectional one, a Hugging Face one) get the full context through open_clip itself.
        """
        m = self.model
        if not self._causal_text():
            return m.encode_text(tokens, normalize=True)
        tokens = trim_padding(tokens)
        n = tokens.shape[1]
        cast_dtype = m.transformer.get_cast_dtype()
        if self._rows is None:
            x = m.token_embedding(tokens).to(cast_dtype)
        else:
            row_of, rows = self._rows
            x = F.embedding(row_of[tokens], rows).to(cast_dtype)
        x = x + m.positional_embedding[:n].to(cast_dtype)
        x = m.transformer(x, attn_mask=m.attn_mask[:n, :n])
        x = m.ln_final(x)
        x = text_global_pool(
            x, tokens, m.text_pool_type, eos_token_id=getattr(m, "text_eos_id", None)
        )
        if m.text_projection is not None:
            x = (
                m.text_projection(x)
                if isinstance(m.text_projection, torch.nn.Linear)
                else x @ m.text_projection
            )
        return F.normalize(x, dim=-1)

    def _causal_text(self) -> bool:
        """An open_clip ``CLIP`` text tower with a causal mask and end-of-text pooling."""
        m = self.model
        causal = isinstance(m, open_clip.CLIP) and getattr(m, "attn_mask", None) is not None
        return causal and m.text_pool_type in ("argmax", "eos")

    @contextlib.contextmanager
    def _vocabulary_rows(self, tokens: torch.Tensor) -> Iterator[torch.nn.Parameter | None]:
        """Train only the token-embedding rows that ``tokens`` use; yields them (None: the whole
        embedding trains as usual).

        Exact, not an approximation: each ``finetune`` call starts a fresh AdamW, which updates
        each element on its own gradient history, and an embedding row no text of the call uses
        has a zero gradient at every step, so zero moments and no update, when its weight decay
        is 0. So the call trains these rows as a small parameter of their own and writes them
        back, and skips the dense gradient, zeroing and AdamW pass over every row of the
        vocabulary (49,408 x 64 for the built-in model: about a sixth of a step on a CPU). With
        weight decay, which moves every row, the whole embedding trains.
        """
        embedding = getattr(self.model, "token_embedding", None)
        usable = self._causal_text() and self.config.weight_decay == 0.0
        if not usable or embedding is None or not embedding.weight.requires_grad:
            yield None
            return
        used = torch.unique(tokens)
        row_of = torch.zeros(embedding.num_embeddings, dtype=torch.long, device=tokens.device)
        row_of[used] = torch.arange(len(used), device=tokens.device)
        rows = torch.nn.Parameter(embedding.weight.detach()[used].clone())
        embedding.weight.requires_grad_(False)
        self._rows = (row_of, rows)
        try:
            yield rows
        finally:
            self._rows = None
            embedding.weight.requires_grad_(True)
            with torch.no_grad():
                embedding.weight[used] = rows.detach()

    def locked_features(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """The locked part of the image tower (``_split_image_tower``) on ``images``, each image
        computed once for a given trunk state.

        The cache is keyed by each image's content digest and valid only for the trunk state it
        was computed with: a digest of the trunk's weights and buffers, taken at every call, so
        a changed trunk (another checkpoint, a fine-tuned one) is never served old features.
        """
        locked, _ = self._split_image_tower()
        trunk = module_digest(locked)
        if trunk != self._cached_trunk or len(self._trunk_cache) > MAX_CACHED_IMAGES:
            self._trunk_cache, self._cached_trunk = {}, trunk
        keys = [image_key(im) for im in images]
        missing = missing_keys(keys, self._trunk_cache)  # digest -> its first image
        if missing:
            was_training = locked.training
            locked.eval()  # BatchNorm on its running statistics, as in inference
            pixels = self.images_tensor([images[i] for i in missing.values()])
            with torch.no_grad(), autocast(self.device):
                out = torch.cat([locked(b) for b in pixels.split(256)]).float()
            locked.train(was_training)
            self._trunk_cache.update(zip(missing, out, strict=True))
        return torch.stack([self._trunk_cache[k] for k in keys])

    def _split_image_tower(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """(locked, trainable) parts of the image tower for locked-image tuning: a timm tower's
        trunk and head; any other tower is locked whole."""
        visual = self.model.visual
        if hasattr(visual, "trunk") and hasattr(visual, "head"):
            return visual.trunk, visual.head
        return visual, torch.nn.Identity()

    # ------------------------------------------------------------------ the VLM interface
    @torch.inference_mode()
    def evaluate(self, samples: Sequence[Sample]) -> list[ClipResult]:
        """Loss contributions, similarities and correctness per sample (groups of
        ``eval_batch_size`` samples form the contrastive batch)."""
        self.model.eval()
        results: list[ClipResult] = []
        groups = list(chunks(samples, self.config.eval_batch_size))
        for group in progress(groups, desc="clip evaluate"):
            texts = self.texts_tensor(sample_texts(group))
            if self.config.lock_image:  # the locked trunk's features, once per image
                head = self._split_image_tower()[1]
                zi, zt, scale = self._features(
                    self.locked_features([s.image for s in group]), texts, head
                )
            else:
                zi, zt, scale = self.features(self.images_tensor([s.image for s in group]), texts)
            losses = negclip_loss_terms(zi, zt, scale).tolist()
            sims = similarities(zi, zt)
            correct = accuracy_mask(sims).tolist()
            for loss, sim, ok in zip(losses, sims.tolist(), correct, strict=True):
                results.append(ClipResult(loss, sim[0], sim[1], sim[2], bool(ok)))
        return results

    def fit_image(self, image: np.ndarray) -> np.ndarray:
        """open_clip's inference transform up to the tensor (its resize and centre crop)."""
        pil = Image.fromarray(image).convert("RGB")
        for step in getattr(self.preprocess, "transforms", []):
            if not isinstance(step, Resize | CenterCrop):
                break
            pil = step(pil)
        return np.asarray(pil)

    @torch.inference_mode()
    def caption_scores(
        self, images: Sequence[np.ndarray], options: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        """Cosine similarity of each image to each of its captions (``eval_batch_size`` images a
        batch; the locked trunk's features as in ``evaluate``)."""
        self.model.eval()
        out: list[np.ndarray] = []
        groups = list(chunks(range(len(images)), self.config.eval_batch_size))
        for group in progress(groups, desc="clip caption scores"):
            texts = self.texts_tensor([t for i in group for t in options[i]])
            if self.config.lock_image:
                head = self._split_image_tower()[1]
                zi, zt, _ = self._features(
                    self.locked_features([images[i] for i in group]), texts, head
                )
            else:
                zi, zt, _ = self.features(self.images_tensor([images[i] for i in group]), texts)
            start = 0
            for row, i in enumerate(group):
                end = start + len(options[i])
                out.append((zt[start:end] @ zi[row]).cpu().numpy())
                start = end
        return out

    def j2(self, results: Sequence[ClipResult]) -> float:
        """J2 = L^2 (eq. 3), L the NegCLIP loss over the episode's samples."""
        return float(np.mean([r.loss for r in results])) ** 2

    def hardness(self, results: Sequence[ClipResult]) -> list[float]:
        """Each sample's contribution to eq. 1 (the NegCLIP loss of its evaluation group)."""
        return [r.loss for r in results]

    def errors(self, results: Sequence[ClipResult]) -> list[bool]:
        """The caption did not beat both negatives."""
        return [not r.correct for r in results]

    def metric(self, results: Sequence[ClipResult]) -> float:
        """Accuracy: the fraction of images whose caption beats both negatives."""
        return float(np.mean([r.correct for r in results]))

    def optimizer(self, exclude: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """AdamW with open_clip's split: no weight decay on gains, biases and logit_scale.
        The parameters of ``exclude`` (a locked part) are left out."""
        locked = {id(p) for p in exclude.parameters()} if exclude is not None else set()
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for name, p in self.model.named_parameters():
            if not p.requires_grad or id(p) in locked:
                continue
            exclude_wd = p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name
            (no_decay if exclude_wd or "logit_scale" in name else decay).append(p)
        groups = [
            {"params": no_decay, "weight_decay": 0.0},
            {"params": decay, "weight_decay": self.config.weight_decay},
        ]
        # fused: one kernel for all parameters (4x faster than the per-tensor loop on a CPU,
        # where the 49k-row token embedding dominates each step)
        return torch.optim.AdamW(groups, lr=self.config.lr, fused=True)

    def train_step(
        self,
        optimizer: torch.optim.Optimizer,
        images: torch.Tensor,
        texts: torch.Tensor,
        encode_image: Any = None,
    ) -> float:
        """One AdamW step of eq. 1 on a minibatch; texts are the kN texts of the N images.
        ``encode_image`` maps ``images`` to image features (default: the whole tower)."""
        zi, zt, scale = self._features(images, texts, encode_image or self.model.encode_image)
        loss = negclip_loss(zi, zt, scale)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            self.model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        return float(loss.detach())

    def finetune(
        self, samples: Sequence[Sample], k: int, *, seed: int | None = None
    ) -> list[float]:
        """K epochs of AdamW on eq. 1 (NegCLIP form) over ``samples``; the per-step losses.

        Each call starts a fresh optimizer (one fine-tuning round per batch, as in Algorithm 1),
        so a checkpoint of the weights is all a resumed run needs. ``seed`` (default
        ``config.seed``) fixes the minibatch order.
        """
        if k < 0:
            raise ValueError(f"k (epochs) must be >= 0, got {k}")
        if not samples:
            return []
        locked: torch.nn.Module | None = None
        encode_image = self.model.encode_image
        if self.config.lock_image:
            # LiT: the locked part runs once per image, in inference mode (BatchNorm on its
            # running statistics), and every step starts from its output (``locked_features``:
            # the loop's evaluation of the episode has computed it already)
            locked, encode_image = self._split_image_tower()
            images = self.locked_features([s.image for s in samples])
        else:
            images = self.images_tensor([s.image for s in samples])
        self.model.train()
        if locked is not None:
            locked.eval()  # model.train() above switched it back
        if self.config.freeze_bn_stats:
            for module in self.model.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.eval()
        texts = sample_texts(samples)
        n = len(samples)
        tokens = self.texts_tensor(texts).reshape(3, n, -1)
        generator = torch.Generator().manual_seed(self.config.seed if seed is None else seed)
        steps = [
            order[start : start + self.config.batch_size]
            for order in (torch.randperm(n, generator=generator) for _ in range(k))
            for start in range(0, n, self.config.batch_size)
        ]
        losses = []
        with self._vocabulary_rows(tokens) as rows:
            optimizer = self.optimizer(exclude=locked)
            if rows is not None:  # the used rows, in the embedding's place (no weight decay)
                optimizer.add_param_group({"params": [rows], "weight_decay": 0.0})
            for idx in progress(steps, desc="clip finetune"):
                idx = idx.to(self.device)
                batch_tokens = tokens[:, idx].reshape(3 * len(idx), -1)
                losses.append(self.train_step(optimizer, images[idx], batch_tokens, encode_image))
        self.model.eval()
        return losses
