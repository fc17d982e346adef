"""Chat with one base model in memory and trained adapters attached to it, base vs adapter.

Both sides use the tokenizer and chat template saved with the adapter (the ones used in training)
and the same generation settings; the base answer comes from the same weights with the adapter
disabled, so there is never a second copy of the model.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.models import loader
from engine.system import device
from engine.system.threads import on_own_thread
from engine.training import adapters, factories


@dataclass(frozen=True)
class GenParams:
    """Generation settings shared by both sides; temperature 0 means greedy decoding."""

    max_new_tokens: int = 160
    temperature: float = 0.0
    top_p: float = 1.0
    repetition_penalty: float = 1.1
    seed: int = 0
    system_prompt: str = ""


@dataclass(frozen=True)
class AnswerPair:
    """The base model's and the adapter's answers to the same conversation."""

    base: str
    adapter: str


class ChatModel:
    """Loads a base model once and attaches adapters by run folder."""

    def __init__(self, lock: device.DeviceLock = device.DEVICE_LOCK) -> None:
        self.lock = lock  # the device lock generation shares with training (Studio's spans processes)
        self._base_folder: Path | None = None
        self._model = None
        self._tokenizers: dict[str, object] = {}
        self.loads = 0  # how many times a base model was loaded (tests assert one)

    def compare(self, run_dir: str | Path, messages: list[dict], params: GenParams = GenParams(),
                adapter_messages: list[dict] | None = None) -> AnswerPair:
        """Base and adapter answers from one model object. In a multi-turn chat each side continues its
        own conversation: `messages` for the base, `adapter_messages` (default: the same) for the adapter."""
        with self._session(run_dir) as (_name, tokenizer):
            with self._model.disable_adapter():
                base = self._generate(tokenizer, messages, params)
            return AnswerPair(base=base, adapter=self._generate(tokenizer, adapter_messages or messages, params))

    def answer(self, run_dir: str | Path, messages: list[dict], params: GenParams = GenParams(),
               side: str = "adapter") -> str:
        """One side's answer ("base" or "adapter") to `messages`, whole: the text `compare` gives that side."""
        with self._session(run_dir) as (_name, tokenizer), self._side(side):
            return self._generate(tokenizer, messages, params)

    def stream_answer(self, run_dir: str | Path, messages: list[dict], params: GenParams = GenParams(),
                      side: str = "adapter"):
        """One side's answer ("base" or "adapter") growing as tokens arrive, as `stream_compare` streams it;
        closing the generator early stops the generation and frees the device."""
        with self._session(run_dir) as (_name, tokenizer), self._side(side):
            yield from self._stream(tokenizer, messages, params)

    def _side(self, side: str):
        """The context that answers as `side`: the adapter disabled for "base", else the active adapter as is."""
        return self._model.disable_adapter() if side == "base" else nullcontext()

    @contextmanager
    def _session(self, run_dir: str | Path):
        """Holds the device lock with the adapter of `run_dir` (a run folder or one of its checkpoint
        folders) attached and active; yields (name, tokenizer)."""
        if not self.lock.acquire("chat"):
            raise EngineError("busy_generating", hint="hint_wait_or_stop")
        try:
            name = self._attach(Path(run_dir))
            self._model.set_adapter(name)
            yield name, self._tokenizers[name]
        finally:
            self.lock.release()

    @on_own_thread
    def _attach(self, path: Path) -> str:
        run_dir, adapter_dir = adapters.locate(path)
        config = TrainConfig.from_yaml(run_dir / "config.yaml")
        folder = loader.resolve_model(config.model_name_or_path)
        name = f"run_{run_dir.resolve().name}" + (f"_{adapter_dir.name}" if adapter_dir != run_dir / "adapter" else "")
        if self._model is None or folder != self._base_folder:
            self._load_base(folder, config, adapter_dir, name)
        elif name not in self._model.peft_config:
            self._model.load_adapter(str(adapter_dir), adapter_name=name)
        if name not in self._tokenizers:
            self._tokenizers[name] = loader.load_tokenizer(adapter_dir)
        return name

    def _load_base(self, folder: Path, config: TrainConfig, adapter_dir: Path, name: str) -> None:
        from peft import PeftModel

        self._model = None
        device.release_memory()
        cuda = device.cuda_available()
        kwargs = factories.model_kwargs(config, cuda, device.bf16_supported())
        if cuda and "device_map" not in kwargs:
            kwargs["device_map"] = {"": 0}
        base = loader.load_model(folder, kwargs)
        self._model = PeftModel.from_pretrained(base, str(adapter_dir), adapter_name=name)
        self._model.eval()
        self._base_folder = folder
        self._tokenizers.clear()
        self.loads += 1

    def stream_compare(self, run_dir: str | Path, messages: list[dict], params: GenParams = GenParams(),
                       adapter_messages: list[dict] | None = None):
        """Like `compare`, but yields (base so far, adapter so far) as tokens arrive: the base answer
        streams first, then the adapter's, from the same model object."""
        with self._session(run_dir) as (_name, tokenizer):
            base = ""
            with self._model.disable_adapter():
                for base in self._stream(tokenizer, messages, params):
                    yield base, ""
            for adapter in self._stream(tokenizer, adapter_messages or messages, params):
                yield base, adapter

    def _stream(self, tokenizer, messages: list[dict], params: GenParams):
        """The answer to one conversation, growing as tokens are generated (a worker thread generates)."""
        import threading

        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []
        abandoned = threading.Event()  # the reader went away: stop generating before the lock is freed

        def work() -> None:
            try:
                self._generate_many(tokenizer, [messages], params, streamer=streamer,
                                    stop=lambda *_args, **_kwargs: abandoned.is_set())
            except BaseException as exc:  # surfaced in the caller's thread below
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        text = ""
        try:
            for piece in streamer:
                text += piece
                yield text.strip()
        finally:
            abandoned.set()
            worker.join()
        if failure:
            raise failure[0]

    def compare_batch(self, run_dir: str | Path, conversations: list[list[dict]],
                      params: GenParams = GenParams()) -> list[AnswerPair]:
        """Base and adapter answers to several conversations in ONE mixed batch: PEFT routes each row
        through the adapter or around it (`adapter_names=["__base__", name, ...]`), so one forward
        pass per token serves both sides (used to pre-generate blind studies)."""
        with self._session(run_dir) as (name, tokenizer):
            doubled = [conversation for conversation in conversations for _side in (0, 1)]
            names = ["__base__", name] * len(conversations)
            texts = self._generate_many(tokenizer, doubled, params, adapter_names=names)
        return [AnswerPair(base=texts[2 * i], adapter=texts[2 * i + 1]) for i in range(len(conversations))]

    @on_own_thread
    def answer_losses(self, run_dir: str | Path, examples: list[dict], max_length: int) -> dict[str, float]:
        """Mean cross-entropy on the trained (answer) tokens of `examples`, base vs adapter."""
        import torch

        from engine.data import preview

        with self._session(run_dir) as (_name, tokenizer):
            totals = {"base": [0.0, 0], "adapter": [0.0, 0]}
            for example in examples:
                view = preview.training_view(example, tokenizer, max_length)
                kept = [(i, k) for i, k in zip(view.input_ids, view.kinds) if k != preview.CUT]
                ids = torch.tensor([[i for i, _k in kept]], device=self._model.device)
                labels = torch.tensor([[i if k == preview.TRAINED else -100 for i, k in kept]],
                                      device=self._model.device)
                count = int((labels[:, 1:] != -100).sum())
                if count == 0:
                    continue
                with torch.no_grad():
                    with self._model.disable_adapter():
                        totals["base"][0] += float(self._model(input_ids=ids, labels=labels).loss) * count
                    totals["adapter"][0] += float(self._model(input_ids=ids, labels=labels).loss) * count
                totals["base"][1] += count
                totals["adapter"][1] += count
        return {side: total / max(n, 1) for side, (total, n) in totals.items()}

    def _generate(self, tokenizer, messages: list[dict], params: GenParams) -> str:
        return self._generate_many(tokenizer, [messages], params)[0]

    @on_own_thread
    def _generate_many(self, tokenizer, conversations: list[list[dict]], params: GenParams,
                       adapter_names: list[str] | None = None, streamer=None, stop=None) -> list[str]:
        """Answers to several conversations at once (left-padded batch), with the same settings."""
        import torch

        if params.system_prompt.strip():
            conversations = [[{"role": "system", "content": params.system_prompt}] +
                             [m for m in messages if m["role"] != "system"] for messages in conversations]
        texts = [tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                 for messages in conversations]
        inputs = tokenizer(texts, return_tensors="pt", padding=True, padding_side="left",
                           add_special_tokens=False).to(self._model.device)
        sampling = params.temperature > 0
        torch.manual_seed(params.seed)
        extra = {"adapter_names": adapter_names} if adapter_names else {}
        if streamer is not None:
            extra["streamer"] = streamer
        if stop is not None:
            from transformers import StoppingCriteriaList

            extra["stopping_criteria"] = StoppingCriteriaList([stop])
        with torch.no_grad():
            output = self._model.generate(
                **inputs, max_new_tokens=params.max_new_tokens, do_sample=sampling,
                temperature=params.temperature if sampling else None, top_p=params.top_p if sampling else None,
                top_k=None, repetition_penalty=params.repetition_penalty, pad_token_id=tokenizer.pad_token_id,
                **extra)
        start = inputs["input_ids"].shape[1]
        return [tokenizer.decode(row[start:], skip_special_tokens=True).strip() for row in output]
