"""The PaliGemma family through transformers and peft (spec section 5; the paper's section 4.4).

One loader for every checkpoint: ``PaliGemmaForConditionalGeneration.from_pretrained`` and
``PaliGemmaProcessor.from_pretrained`` on a local directory (safetensors only, no hub access).
That directory is either a real checkpoint (e.g. google/paligemma-3b-pt-224 downloaded
beforehand) or the built-in small model, which ``build_builtin`` writes with
``save_pretrained``:

- model (``builtin.py``): a ``PaliGemmaConfig`` whose sub-configs are the JSON
  ``configs/RLS3-PaliGemma-Loc.json``:
  the vision tower is the built-in CLIP's localisation trunk as a transformers model
  (``locnet.LocVisionModel``, registered with the Auto classes, so ``from_pretrained`` builds it
  like SigLIP), whose image tokens are one per object of the vocabulary: its identity and where
  it is (presence, image x and y, depth, and x and y times the depth), read by soft-argmax from
  heat maps on a 32 x 32 grid; the language model is a Gemma of four layers, width 128
  (about 1.5M parameters in all);
- tokenizer: a word-level ``tokenizers`` model over the closed vocabulary of the questions,
  answers, object lists and detection prompts (words split on spaces, SentencePiece-style "▁"
  marks, so decoding restores the text), plus the special tokens Gemma and the processor use
  (``<pad>`` 0, ``<eos>`` 1, ``<bos>`` 2, ``<unk>`` 3, ``<image>`` 4, and the newline that ends a
  prompt); the processor adds PaliGemma's 1024 ``<locNNNN>`` tokens, used by detection.

Evaluation asks the question of spec section 4, decodes greedily, parses the answer's spatial
terms and scores them with the rubric; J2 = (6 - mean S_PG)^2 (eq. 3). Fine-tuning trains the
language model's self-attention projections (q, k, v, o) only, as the paper does, or a LoRA
adapter on the same modules through peft (merged back into the weights at the end of each
``finetune`` call, so the model is a plain PaliGemma between calls), or, with ``trainable:
language_model``, every weight of the language model (the built-in bench's choice:
docs/research.md); the vision tower and the projector stay frozen.

While they are frozen (every setting but LoRA on a vision tower's attention), their output is a
function of the image and their weights: ``frozen_image_features`` computes it once per image and
serves it again to generation, caption scoring and fine-tuning, keyed by a digest of that part's
weights and buffers taken at every call. On the CPU each image is computed on its own, so its
features do not depend on which images shared a batch, nor a run's files on what the cache held
(a resumed run repeats an uninterrupted one).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
import torch
from PIL import Image
from transformers import (
    PaliGemmaForConditionalGeneration,
    PaliGemmaProcessor,
)
from transformers.image_utils import SizeDict
from transformers.modeling_outputs import BaseModelOutputWithPooling

import benchmark.vlm.locnet  # noqa: F401  (registers the built-in vision tower)
from benchmark.captions import parse_terms, rubric_score
from benchmark.config import PaligemmaVLMConfig
from benchmark.fileio import atomic_directory
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
from benchmark.vlm.paligemma.builtin import build_builtin

ATTENTION = r"language_model\.layers\.\d+\.self_attn\.(q_proj|k_proj|v_proj|o_proj)"
LANGUAGE_MODEL = r"(^|\.)language_model\."
MAX_SCORE = 6  # J2 = (6 - mean S_PG)^2, eq. 3
# the prompt after which an external set's captions are scored as answers (PaliGemma's own
# captioning task prefix; the built-in model's tokenizer reads words it does not know as <unk>)
CHOICE_PROMPT = "caption en"
MAX_CACHED_BYTES = 1 << 30  # frozen image features kept per model (4.6 kB an image built-in)


def pixels_key(pixels: torch.Tensor) -> bytes:
    """A content digest of one image's pixel values (shape, dtype and bytes)."""
    t = pixels.detach().cpu().contiguous()
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{tuple(t.shape)}{t.dtype}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.digest()


@dataclass(frozen=True)
class PaligemmaResult:
    """One sample's evaluation: the generated answer, its parsed terms and its rubric score."""

    answer: str
    terms: tuple[str, ...]
    score: int  # S_PG, 1..5

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["terms"] = list(self.terms)
        return d


# ---------------------------------------------------------------------------- trainable parts


def is_attention_parameter(name: str) -> bool:
    """True for the language model's self-attention projections (the paper's fine-tuned part)."""
    return re.search(ATTENTION + r"\.", name) is not None


def is_language_model_parameter(name: str) -> bool:
    """True for every weight of the language model: its token embeddings (tied to the output
    layer), attention, MLPs and norms; not the vision tower or the projector."""
    return re.search(LANGUAGE_MODEL, name) is not None


def freeze_all_but(model: torch.nn.Module, trainable: str) -> list[torch.nn.Parameter]:
    """Freeze every parameter but the ``trainable`` part (``PaligemmaVLMConfig.trainable``:
    "attention" or "language_model"); return those."""
    keep = is_attention_parameter if trainable == "attention" else is_language_model_parameter
    params = []
    for name, p in model.named_parameters():
        p.requires_grad_(keep(name))
        if p.requires_grad:
            params.append(p)
    if not params:
        raise ValueError(f"no {trainable} parameters found to fine-tune")
    return params


# ---------------------------------------------------------------------------- the VLM


class PaligemmaVLM(VLM):
    """A PaliGemma model and its processor."""

    family: ClassVar[str] = "paligemma"

    def __init__(
        self,
        model: PaliGemmaForConditionalGeneration,
        processor: PaliGemmaProcessor,
        config: PaligemmaVLMConfig | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.device = device or default_device()
        # Any: transformers' annotations of .to and .generate reject its own model classes.
        self.model: Any = cast(Any, model).to(self.device)
        self.model.requires_grad_(False)
        self.model.eval()
        self.processor = processor
        self.config = config or PaligemmaVLMConfig()
        # frozen image features by pixel digest, valid for the image part's state ``_cached_part``
        self._image_cache: dict[bytes, torch.Tensor] = {}
        self._cached_part: str | None = None
        self._cached_bytes = 0

    @classmethod
    def builtin(
        cls, config: PaligemmaVLMConfig | None = None, device: torch.device | None = None
    ) -> PaligemmaVLM:
        """The built-in small model, freshly initialised (seeded by ``config.seed``); it is
        written to a temporary directory and read back, the path a real checkpoint takes."""
        config = config or PaligemmaVLMConfig()
        with tempfile.TemporaryDirectory() as tmp:
            return cls.load(build_builtin(Path(tmp) / "builtin", seed=config.seed), config, device)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        config: PaligemmaVLMConfig | None = None,
        device: torch.device | None = None,
        *,
        arch: str | None = None,
    ) -> PaligemmaVLM:
        """Load model and processor from a local checkpoint directory (safetensors only), or
        the checkpoint that a base model written by ``pointer.record`` records. ``arch`` is
        CLIP's: a PaliGemma snapshot names its own architecture."""
        from benchmark.vlm.pointer import resolve

        if arch is not None:
            raise ValueError("arch applies to CLIP only; a PaliGemma checkpoint names its own")
        p = require_path(resolve(path)[0], "PaliGemma checkpoint")
        if not (p / "config.json").is_file():
            raise FileNotFoundError(f"PaliGemma checkpoint {p} has no config.json")
        model = PaliGemmaForConditionalGeneration.from_pretrained(
            p, use_safetensors=True, local_files_only=True, dtype=torch.float32
        )  # fp32 master weights; autocast gives bf16 compute on CUDA
        processor = PaliGemmaProcessor.from_pretrained(p, local_files_only=True)
        return cls(model, processor, config, device)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """``save_pretrained`` of model and processor (safetensors), atomically."""
        with atomic_directory(path) as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.processor.save_pretrained(tmp)
        return Path(path)

    # ------------------------------------------------------------------ inputs
    def prompt(self, text: str) -> str:
        """The model's text input: the image placeholder, the prefix, the question."""
        return f"{self.processor.image_token}{self.config.prompt_prefix}{text}"

    def pixels(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """The processor's pixel values of ``images``, on the device."""
        out = self.processor.image_processor(list(images), return_tensors="pt")
        return cast(torch.Tensor, out["pixel_values"]).to(self.device)

    def inputs(
        self,
        images: Sequence[np.ndarray],
        prompts: Sequence[str],
        answers: Sequence[str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Processor inputs on the device; with ``answers``, training labels (``suffix=``).

        Prompts are left-padded for generation, answers right-padded for training.
        """
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left" if answers is None else "right"
        batch = self.processor(
            images=list(images),
            text=[self.prompt(p) for p in prompts],
            suffix=list(answers) if answers is not None else None,
            return_tensors="pt",
            padding="longest",
        )
        return {k: v.to(self.device) for k, v in batch.items()}

    @torch.inference_mode()
    def generate(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[str]:
        """Greedy answers to ``prompts`` about ``images`` (batched by ``eval_batch_size``)."""
        self.model.eval()
        answers: list[str] = []
        size = self.config.eval_batch_size
        batches = list(zip(chunks(images, size), chunks(prompts, size), strict=True))
        with self.frozen_image_features():
            for ims, prs in progress(batches, desc="paligemma generate"):
                batch = self.inputs(ims, prs)
                with autocast(self.device):
                    out = self.model.generate(
                        **batch,
                        max_new_tokens=self.config.max_new_tokens,
                        do_sample=False,
                        num_beams=1,
                    )
                new = out[:, batch["input_ids"].shape[1] :]
                texts = self.processor.batch_decode(new, skip_special_tokens=True)
                answers.extend(t.strip() for t in texts)
        return answers

    def loss(
        self, batch: dict[str, torch.Tensor], model: torch.nn.Module | None = None
    ) -> torch.Tensor:
        """The next-token loss on the answer tokens of a training batch."""
        with autocast(self.device):
            return (model or self.model)(**batch).loss

    def _image_part(self) -> torch.nn.ModuleList:
        """The modules between the pixels and the language model: vision tower, projector."""
        inner = self.model.model
        return torch.nn.ModuleList([inner.vision_tower, inner.multi_modal_projector])

    @contextlib.contextmanager
    def frozen_image_features(self) -> Iterator[None]:
        """Within: the model's image features (vision tower, then projector), each image's
        computed once and served again, while that part is frozen (in eval mode, nothing in it
        trained); otherwise the model's own path.

        The cache is keyed by each image's pixel digest and valid only for the state it was
        computed with: a digest of the part's weights and buffers, taken on entry, so another
        checkpoint or a changed weight is never served old features. On the CPU each missing
        image is computed alone: its features then do not depend on the batch it came in.
        """
        inner = self.model.model  # PaliGemmaModel: ``forward`` calls its get_image_features
        part = self._image_part()
        modules = list(part.modules())[1:]  # the part's own list is not a layer
        trained = any(m.training or any(p.requires_grad for p in m.parameters()) for m in modules)
        if trained or "get_image_features" in vars(inner):  # or served already (a nested call)
            yield
            return
        state = module_digest(part)
        if state != self._cached_part or self._cached_bytes > MAX_CACHED_BYTES:
            self._image_cache, self._cached_part, self._cached_bytes = {}, state, 0
        compute = inner.get_image_features
        alone = self.device.type == "cpu"

        def cached(pixel_values: torch.Tensor, **kwargs: Any) -> BaseModelOutputWithPooling:
            keys = [pixels_key(p) for p in pixel_values]
            missing = missing_keys(keys, self._image_cache)  # digest -> its first image
            if missing:
                # normal tensors (not inference ones), for fine-tuning reads them too
                with torch.inference_mode(False), torch.no_grad():
                    pixels = pixel_values[list(missing.values())].clone()
                    groups = pixels.split(1) if alone else [pixels]
                    out = torch.cat([compute(g, **kwargs).pooler_output for g in groups])
                for key, features in zip(missing, out, strict=True):
                    self._image_cache[key] = features
                    self._cached_bytes += features.numel() * features.element_size()
            return BaseModelOutputWithPooling(
                pooler_output=torch.stack([self._image_cache[k] for k in keys])
            )

        inner.get_image_features = cached
        try:
            yield
        finally:
            del inner.get_image_features

    # ------------------------------------------------------------------ the VLM interface
    def evaluate(self, samples: Sequence[Sample]) -> list[PaligemmaResult]:
        """Greedy answers to the position questions, their parsed terms and rubric scores."""
        answers = self.generate([s.image for s in samples], [s.record.question for s in samples])
        return [
            PaligemmaResult(a, parse_terms(a), rubric_score(a, s.record.terms))
            for a, s in zip(answers, samples, strict=True)
        ]

    def fit_image(self, image: np.ndarray) -> np.ndarray:
        """The image processor's own resize (to its height x width, its resampling filter, on
        the uint8 channels-first tensor it makes of an array)."""
        proc = self.processor.image_processor
        rgb = np.asarray(Image.fromarray(image).convert("RGB"))
        tensor = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None]
        size = SizeDict(height=proc.size["height"], width=proc.size["width"])
        out = proc.resize(tensor, size=size, resample=proc.resample)
        return out[0].permute(1, 2, 0).contiguous().numpy()

    @torch.inference_mode()
    def caption_scores(
        self, images: Sequence[np.ndarray], options: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        """Each caption's mean token log-likelihood as the answer to ``CHOICE_PROMPT`` about its
        image (the mean, so that a longer caption is not penalised for its length)."""
        self.model.eval()
        pairs = [(i, text) for i, opts in enumerate(options) for text in opts]
        flat: list[float] = []
        with self.frozen_image_features():
            for chunk in progress(
                list(chunks(pairs, self.config.eval_batch_size)), desc="paligemma caption scores"
            ):
                batch = self.inputs(
                    [images[i] for i, _ in chunk],
                    [CHOICE_PROMPT] * len(chunk),
                    [t for _, t in chunk],
                )
                labels = batch.pop("labels")
                with autocast(self.device):
                    logits = self.model(**batch).logits.float()
                target = labels[:, 1:]
                mask = (target != -100) & (batch["attention_mask"][:, 1:] == 1)
                logp = logits[:, :-1].log_softmax(-1).gather(-1, target.clamp(min=0)[..., None])
                per_token = logp[..., 0] * mask
                flat += (per_token.sum(1) / mask.sum(1).clamp(min=1)).tolist()
        out, start = [], 0
        for opts in options:
            out.append(np.array(flat[start : start + len(opts)]))
            start += len(opts)
        return out

    def j2(self, results: Sequence[PaligemmaResult]) -> float:
        """J2 = (6 - mean S_PG)^2 (eq. 3) over the episode's results."""
        return (MAX_SCORE - float(np.mean([r.score for r in results]))) ** 2

    def hardness(self, results: Sequence[PaligemmaResult]) -> list[float]:
        """6 - S_PG per sample (0 for a perfect answer, 5 for none of it)."""
        return [float(MAX_SCORE - r.score) for r in results]

    def errors(self, results: Sequence[PaligemmaResult]) -> list[bool]:
        """The answer scored below the rubric's top."""
        return [r.score < MAX_SCORE - 1 for r in results]

    def metric(self, results: Sequence[PaligemmaResult]) -> float:
        """Mean rubric score S_PG (1..5)."""
        return float(np.mean([r.score for r in results]))

    def finetune(
        self, samples: Sequence[Sample], k: int, *, seed: int | None = None
    ) -> list[float]:
        """K AdamW steps on the question/answer pairs of ``samples``; the per-step losses.

        Minibatches of ``batch_size`` go through a seeded shuffle of the samples, epoch after
        epoch. Only ``config.trainable`` (or a LoRA adapter on the attention) trains; each call
        starts a fresh optimizer (and adapter), so a checkpoint of the weights is all a resumed
        run needs.
        """
        if k < 0:
            raise ValueError(f"k (steps) must be >= 0, got {k}")
        if not samples or k == 0:
            return []
        cfg = self.config
        seed = cfg.seed if seed is None else seed
        seed_everything(seed)
        generator = torch.Generator().manual_seed(seed)
        n = len(samples)
        per_epoch = -(-n // cfg.batch_size)
        orders = [torch.randperm(n, generator=generator) for _ in range(-(-k // per_epoch))]
        steps = [
            order[start : start + cfg.batch_size]
            for order in orders
            for start in range(0, n, cfg.batch_size)
        ][:k]
        train_model, params = self._trainable()
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        train_model.train()
        self._image_part().eval()  # frozen: the vision tower's BatchNorm statistics too
        losses = []
        try:
            with self.frozen_image_features():
                for idx in progress(steps, desc="paligemma finetune"):
                    chosen = [samples[int(i)] for i in idx]
                    batch = self.inputs(
                        [s.image for s in chosen],
                        [s.record.question for s in chosen],
                        [s.record.answer for s in chosen],
                    )
                    loss = self.loss(batch, train_model)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    losses.append(float(loss.detach()))
        finally:
            self._restore(train_model)
        return losses

    def _trainable(self) -> tuple[torch.nn.Module, list[torch.nn.Parameter]]:
        """The module to train and its trainable parameters (``config.trainable``, or LoRA on
        the attention projections)."""
        cfg = self.config
        if not cfg.lora:
            return self.model, freeze_all_but(self.model, cfg.trainable)
        from peft import LoraConfig, get_peft_model

        self.model.requires_grad_(False)
        lora = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=rf".*{ATTENTION}",
        )
        peft_model = get_peft_model(self.model, lora)
        return peft_model, [p for p in peft_model.parameters() if p.requires_grad]

    def _restore(self, train_model: torch.nn.Module) -> None:
        """Merge a LoRA adapter into the weights; freeze everything; back to eval mode."""
        if train_model is not self.model:
            self.model = train_model.merge_and_unload()  # type: ignore[operator]
        self.model.requires_grad_(False)
        self.model.eval()
