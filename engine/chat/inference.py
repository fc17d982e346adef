"""Chat with one base model in memory and trained adapters attached to it: any two sides side by side.

A side is the base model or an adapter (a run's final adapter or one of its checkpoints). The *baseline* side
(left-hand; the base model unless one is named) and the *candidate* side keep the field names "base" and
"adapter" (`AnswerPair.base`, `AnswerPair.adapter`), so earlier callers and files read as before. Both adapters
are attached under their own names to the ONE loaded base model, never a second copy of it; a mixed batch routes
each row through its side's adapter (`adapter_names`, "__base__" for the base model), so both answers come from
one forward pass per token, streamed together.

Both sides use the candidate's tokenizer and chat template (the ones saved with the adapter, used in training),
and the same generation settings. When the baseline adapter was saved with another chat template, the two sides
cannot share a batch: each side is then generated with its own tokenizer, one after the other.
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from engine.chat import sides
from engine.errors import EngineError
from engine.models import loader
from engine.system import device
from engine.system.threads import on_own_thread
from engine.training import factories

BASE_ROUTE = "__base__"  # PEFT's name, in a mixed batch, for rows that go around every adapter
SIDES = ("base", "adapter")  # the baseline side, the candidate side (the names stored for them)


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
    """The baseline side's (`base`) and the candidate side's (`adapter`) answers to the same conversation."""

    base: str
    adapter: str


@dataclass(frozen=True)
class Side:
    """One side on the loaded model: its adapter's name (None: the base model) and the tokenizer it answers with."""

    name: str | None
    tokenizer: object

    @property
    def route(self) -> str:
        """The side's name in a mixed batch's `adapter_names`."""
        return self.name or BASE_ROUTE


def shares_batch(first, second) -> bool:
    """Whether two tokenizers give the same tokens and chat template, so their sides can share one batch."""
    return first is second or (getattr(first, "chat_template", None) == getattr(second, "chat_template", None)
                               and len(first) == len(second) and first.pad_token_id == second.pad_token_id
                               and first.eos_token_id == second.eos_token_id)


class ChatModel:
    """Loads a base model once and attaches adapters by run folder. Every method takes the candidate side's folder
    first and `baseline` (None: the base model; else a run folder or checkpoint folder) for the other side."""

    def __init__(self, lock: device.DeviceLock = device.DEVICE_LOCK) -> None:
        self.lock = lock  # the device lock generation shares with training (Studio's spans processes)
        self._base_folder: Path | None = None
        self._model = None
        self._tokenizers: dict[str, object] = {}
        self.loads = 0  # how many times a base model was loaded (tests assert one)

    def compare(self, run_dir: str | Path | None, messages: list[dict], params: GenParams = GenParams(),
                adapter_messages: list[dict] | None = None, baseline: str | Path | None = None) -> AnswerPair:
        """Both sides' answers from one model object (one mixed batch). In a multi-turn chat each side continues
        its own conversation: `messages` for the baseline, `adapter_messages` (default: the same) for the
        candidate."""
        return self.compare_batch(run_dir, [messages], params, baseline, [adapter_messages or messages])[0]

    def compare_batch(self, run_dir: str | Path | None, conversations: list[list[dict]],
                      params: GenParams = GenParams(), baseline: str | Path | None = None,
                      adapter_conversations: list[list[dict]] | None = None) -> list[AnswerPair]:
        """Both sides' answers to several conversations in ONE mixed batch: PEFT routes each row through its side's
        adapter or around every adapter (`adapter_names=[baseline or "__base__", candidate, ...]`), so one forward
        pass per token serves both sides (used to pre-generate blind studies). `adapter_conversations` (default:
        the same) are the candidate's when the sides' histories differ."""
        with self._session(run_dir, baseline) as (left, right):
            lefts, rights = self._both(left, right, conversations, adapter_conversations or conversations, params)
        return [AnswerPair(base=b, adapter=a) for b, a in zip(lefts, rights)]

    def answer(self, run_dir: str | Path | None, messages: list[dict], params: GenParams = GenParams(),
               side: str = "adapter", baseline: str | Path | None = None) -> str:
        """One side's answer ("base": the baseline, or "adapter": the candidate) to `messages`, whole."""
        with self._session(run_dir, baseline) as pair:
            chosen = pair[SIDES.index(side) if side in SIDES else 1]
            return self._generate_many(chosen.tokenizer, [messages], params, [chosen.route])[0]

    def stream_answer(self, run_dir: str | Path | None, messages: list[dict], params: GenParams = GenParams(),
                      side: str = "adapter", baseline: str | Path | None = None):
        """One side's answer ("base" or "adapter") growing as tokens arrive; closing the generator early stops the
        generation and frees the device."""
        with self._session(run_dir, baseline) as pair:
            chosen = pair[SIDES.index(side) if side in SIDES else 1]
            for texts in self._stream(chosen.tokenizer, [messages], params, [chosen.route]):
                yield texts[0]

    def stream_compare(self, run_dir: str | Path | None, messages: list[dict], params: GenParams = GenParams(),
                       adapter_messages: list[dict] | None = None, baseline: str | Path | None = None):
        """Like `compare`, but yields (baseline so far, candidate so far) as tokens arrive: both sides grow together
        from one mixed batch (two rows, left-padded), and the last pair is `compare`'s. Sides with different chat
        templates stream one after the other."""
        right_messages = adapter_messages or messages
        with self._session(run_dir, baseline) as (left, right):
            if shares_batch(left.tokenizer, right.tokenizer):
                yield from self._stream(right.tokenizer, [messages, right_messages], params, [left.route, right.route])
                return
            base = ""
            for (base,) in self._stream(left.tokenizer, [messages], params, [left.route]):
                yield base, ""
            for (adapter,) in self._stream(right.tokenizer, [right_messages], params, [right.route]):
                yield base, adapter

    def _both(self, left: Side, right: Side, lefts: list[list[dict]], rights: list[list[dict]],
              params: GenParams) -> tuple[list[str], list[str]]:
        """Both sides' whole answers: one interleaved batch when they share a tokenizer, else one batch each."""
        if not shares_batch(left.tokenizer, right.tokenizer):
            return (self._generate_many(left.tokenizer, lefts, params, [left.route] * len(lefts)),
                    self._generate_many(right.tokenizer, rights, params, [right.route] * len(rights)))
        rows = [conversation for pair in zip(lefts, rights) for conversation in pair]
        texts = self._generate_many(right.tokenizer, rows, params, [left.route, right.route] * len(lefts))
        return texts[0::2], texts[1::2]

    @contextmanager
    def _session(self, run_dir: str | Path | None, baseline: str | Path | None = None):
        """Holds the device lock with both sides' adapters attached; yields the (baseline, candidate) sides."""
        if not self.lock.acquire("chat"):
            raise EngineError("busy_generating", hint="hint_wait_or_stop")
        try:
            yield self._attach_sides(run_dir, baseline)
        finally:
            self.lock.release()

    @on_own_thread
    def _attach_sides(self, run_dir: str | Path | None, baseline: str | Path | None) -> tuple[Side, Side]:
        """Attach the adapters of both sides (loading their base model when another one is loaded); a base-model
        side answers with the other side's tokenizer."""
        found = sides.sources(run_dir, baseline)
        first = next(source for source in reversed(found) if source is not None)  # the candidate when it is one
        folder = loader.resolve_model(first.model)
        if self._model is None or folder != self._base_folder:
            self._load_base(folder, first)
        for source in found:
            if source is not None and source.name not in self._model.peft_config:
                self._model.load_adapter(str(source.adapter_dir), adapter_name=source.name)
            if source is not None and source.name not in self._tokenizers:
                self._tokenizers[source.name] = loader.load_tokenizer(source.adapter_dir)
        shared = self._tokenizers[first.name]
        left, right = (Side(s.name, self._tokenizers[s.name]) if s is not None else Side(None, shared) for s in found)
        return left, right

    def _load_base(self, folder: Path, source: sides.AdapterSource) -> None:
        """Load the base model in `folder` with `source`'s adapter attached (dropping the model loaded before)."""
        from peft import PeftModel

        self._model = None
        device.release_memory()
        cuda = device.cuda_available()
        kwargs = factories.model_kwargs(source.config, cuda, device.bf16_supported())
        if cuda and "device_map" not in kwargs:
            kwargs["device_map"] = {"": 0}
        base = loader.load_model(folder, kwargs)
        self._model = PeftModel.from_pretrained(base, str(source.adapter_dir), adapter_name=source.name)
        self._model.eval()
        self._base_folder = folder
        self._tokenizers.clear()
        self.loads += 1

    def _stream(self, tokenizer, conversations: list[list[dict]], params: GenParams, routes: list[str]):
        """The answers to the conversations (one batch row each), growing together as tokens are generated (a
        worker thread generates); yields the tuple of the rows' texts so far, the whole texts last."""
        import threading

        from engine.chat.streaming import RowsStreamer

        streamer = RowsStreamer(tokenizer, len(conversations))
        failure: list[BaseException] = []
        abandoned = threading.Event()  # the reader went away: stop generating before the lock is freed

        def work() -> None:
            try:
                self._generate_many(tokenizer, conversations, params, routes, streamer=streamer,
                                    stop=lambda *_args, **_kwargs: abandoned.is_set())
            except BaseException as exc:  # surfaced in the caller's thread below
                failure.append(exc)
                streamer.fail()

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        try:
            yield from streamer
        finally:
            abandoned.set()
            worker.join()
        if failure:
            raise failure[0]

    @on_own_thread
    def answer_losses(self, run_dir: str | Path | None, examples: list[dict], max_length: int,
                      baseline: str | Path | None = None) -> dict[str, float]:
        """Mean cross-entropy on the trained (answer) tokens of `examples`, baseline ("base") vs candidate
        ("adapter"), each side with its own tokenizer."""
        with self._session(run_dir, baseline) as pair:
            return {name: self._mean_loss(side, examples, max_length) for name, side in zip(SIDES, pair)}

    def _mean_loss(self, side: Side, examples: list[dict], max_length: int) -> float:
        """Mean cross-entropy of one side on the trained tokens of `examples` (0 when none is trained)."""
        import torch

        from engine.data import preview

        total, count = 0.0, 0
        context = self._model.disable_adapter() if side.name is None else nullcontext()
        if side.name is not None:
            self._model.set_adapter(side.name)
        with torch.no_grad(), context:
            for example in examples:
                view = preview.training_view(example, side.tokenizer, max_length)
                kept = [(i, k) for i, k in zip(view.input_ids, view.kinds) if k != preview.CUT]
                ids = torch.tensor([[i for i, _k in kept]], device=self._model.device)
                labels = torch.tensor([[i if k == preview.TRAINED else -100 for i, k in kept]],
                                      device=self._model.device)
                trained = int((labels[:, 1:] != -100).sum())
                if trained:
                    total += float(self._model(input_ids=ids, labels=labels).loss) * trained
                    count += trained
        return total / max(count, 1)

    @on_own_thread
    def _generate_many(self, tokenizer, conversations: list[list[dict]], params: GenParams,
                       routes: list[str] | None = None, streamer=None, stop=None) -> list[str]:
        """Answers to several conversations at once (left-padded batch), with the same settings; `routes` names
        each row's side (an adapter's name, or "__base__")."""
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
        extra = {"adapter_names": routes} if routes else {}
        if streamer is not None:
            extra["streamer"] = streamer
        if stop is not None:
            stopping = loader.import_transformers(name="StoppingCriteriaList")
            extra["stopping_criteria"] = stopping([stop])
        with torch.no_grad():
            output = self._model.generate(
                **inputs, max_new_tokens=params.max_new_tokens, do_sample=sampling,
                temperature=params.temperature if sampling else None, top_p=params.top_p if sampling else None,
                top_k=None, repetition_penalty=params.repetition_penalty, pad_token_id=tokenizer.pad_token_id,
                **extra)
        start = inputs["input_ids"].shape[1]
        from engine.chat.streaming import whole_answer

        return [whole_answer(tokenizer.decode(row[start:], skip_special_tokens=True)) for row in output]
