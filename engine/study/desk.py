"""The studio's blind-study actions: the studies database, question files, setting up and pre-generating
a study of any two sides, opening and closing it, inviting raters, rating it, its verdict, automatic metrics,
exports, and the loop from its votes to a DPO run and back to the next study.

A part of `Studio` (it uses the studio's data folder, chat model, `run_dir`, `adapter_path` and `side_path`);
front ends call these as `Studio` methods.
"""
from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from engine.chat import metrics
from engine.chat.inference import GenParams
from engine.chat.sides import sources
from engine.config import TrainConfig
from engine.errors import EngineError
from engine.study import loop
from engine.study.invitations import Invitation, RaterPass, RaterProgress
from engine.study.questions import held_out_questions, write_questions
from engine.study.rating import RatingItem
from engine.study.stats import summarize
from engine.study.store import StudyStore, load_questions
from engine.system.workspace import Workspace
from engine.training import adapters


class StudyDesk:
    """The blind-study part of `Studio`: it uses the studio's `data_root`, `chat` model, `workspace`, `run_dir`,
    `adapter_path`, `side_path` and its `_studies` slot (None until the database is first opened)."""

    data_root: Path
    chat: object
    workspace: Workspace
    _studies: StudyStore | None
    adapter_path: Callable[[str], Path]
    side_path: Callable[[str], Path | None]
    run_dir: Callable[[str], Path | None]

    @property
    def studies(self) -> StudyStore:
        """The studies database (`<data folder>/studies.db`), opened on first use."""
        if self._studies is None:
            self._studies = StudyStore(self.data_root / "studies.db")
        return self._studies

    def studies_questions(self, path: str | Path) -> list[dict]:
        """The questions (prompt, domain, reference) of a question file; EngineError naming a bad row."""
        return load_questions(self.workspace.check(path, "questions"))

    def held_out_questions_file(self, choice: str) -> Path:
        """Write the held-out rows of the chosen adapter's run as a question file under the data
        folder (prompt + reference), for a study; returns its path."""
        run_dir, _adapter = adapters.locate(self.adapter_path(choice))
        questions = held_out_questions(run_dir)
        return write_questions(self.data_root / "studies" / f"{run_dir.name}-held-out.jsonl", questions)

    def list_studies(self) -> list[dict]:
        """Every study's settings and counts, newest first (no blinding key)."""
        return self.studies.studies()

    def study(self, study_id: int) -> dict:
        """One study's settings (criteria, adapter folder, generation settings) and counts."""
        return self.studies.study(study_id)

    def create_study(self, name: str, questions_path: str | Path, choice: str, params: GenParams = GenParams(),
                     criteria: list[str] | None = None, repeats: int = 0, lang: str = "en",
                     show_reference: bool = False, baseline: str = adapters.BASE_CHOICE) -> dict:
        """A blind study of the questions in `questions_path` comparing the candidate `choice` with the `baseline`
        (each a run id, `run_id@checkpoint-N`, or `BASE_CHOICE` for the base model; by default the candidate
        faces the base model), generated with `params`, shown to raters in `lang` (with the questions' reference
        answers if `show_reference`); it starts as a draft. Returns its settings and counts (`sides` names the
        two). Refuses the same model on both sides and adapters of different base models."""
        questions_path = self.workspace.check(str(questions_path).strip(), "questions")
        candidate, reference = self.side_path(choice), self.side_path(baseline)
        sources(candidate, reference)
        questions = load_questions(questions_path)
        study_id = self.studies.create_study(name, questions, candidate or "", gen_params=asdict(params),
                                             criteria=criteria, repeats=repeats, state="draft", lang=lang,
                                             show_reference=show_reference, baseline_dir=reference)
        return self.studies.study(study_id)

    def generate_study(self, study_id: int, progress: Callable[[int, int], None] | None = None) -> tuple[int, int]:
        """Pre-generate the answers of the study's pending questions with the chat model (resumable);
        returns (pairs generated now, pairs whose answers may reveal a model). `progress(done, total)`."""
        made = self.studies.generate(study_id, self.chat, progress=progress)
        return made, len(self.studies.flagged(study_id))

    def generation_pending(self, study_id: int) -> bool:
        """Whether some of the study's questions still wait for their answers."""
        return bool(self.studies.pending_generation(study_id))

    def set_study_state(self, study_id: int, state: str) -> None:
        """Open (once every answer is generated), pause or close the study; never back to draft."""
        self.studies.set_study_state(study_id, state)

    def invite_rater(self, study_id: int, name: str, domain: str | None = None) -> Invitation:
        """A new rater of the study (name unique in it) and their link's token, known only now."""
        return self.studies.invite_rater(study_id, name, domain)

    def renew_invitation(self, study_id: int, rater_id: int) -> Invitation:
        """A new token for the rater; the old one stops working (a revoked rater may rate again)."""
        return self.studies.renew_invitation(study_id, rater_id)

    def revoke_invitation(self, study_id: int, rater_id: int) -> None:
        """Stop the rater's token from working; their votes are kept."""
        self.studies.revoke_invitation(study_id, rater_id)

    def rater_for_invitation(self, token: str) -> RaterPass:
        """Who holds `token` (rater, study, its language and state); `invite_unknown` for any bad token."""
        return self.studies.rater_for_invitation(token)

    def rater_progress(self, study_id: int) -> list[RaterProgress]:
        """Each rater's items judged of their total and last activity, in the order they were invited."""
        return self.studies.rater_progress(study_id)

    def next_item(self, study_id: int, rater_id: int) -> RatingItem | None:
        """What the rater judges next (question, answers A and B, progress), None when nothing is left."""
        return self.studies.next_item(study_id, rater_id)

    def previous_item(self, study_id: int, rater_id: int, before: tuple[int, bool] | None = None) -> RatingItem | None:
        """The item the rater judged before `before` (or their latest judged one), with their vote in `given`."""
        return self.studies.previous_item(study_id, rater_id, before)

    def vote(self, study_id: int, rater_id: int, question_id: int, choice: str, scores: dict | None = None,
             comment: str = "", repeat: bool = False) -> int:
        """Record a judgement as shown (A, B, tie, both_bad; scores per shown side) while the study is open; a
        new vote on the same item supersedes the rater's earlier one. Returns the vote id."""
        return self.studies.vote(study_id, rater_id, question_id, choice, scores=scores, comment=comment,
                                 repeat=repeat)

    def skip_item(self, study_id: int, rater_id: int, question_id: int, repeat: bool = False) -> None:
        """Put an item at the back of the rater's queue (while the study is open)."""
        self.studies.skip(study_id, rater_id, question_id, repeat=repeat)

    def study_statistics(self, study_id: int) -> dict:
        """The unblinded verdict (`engine.study.stats.summarize` of the study's votes)."""
        return summarize(self.studies.results(study_id))

    def study_reference_scores(self, study_id: int) -> dict:
        """Mean ROUGE-L and BLEU of the baseline ("base") and candidate ("adapter") answers against the questions'
        references."""
        pairs = self.studies.answer_pairs(study_id)
        return metrics.reference_scores([(p["base"], p["adapter"], p["reference"] or "") for p in pairs])

    def study_perplexity(self, study_id: int) -> dict:
        """Eval loss and perplexity of the baseline ("base") and candidate ("adapter") on the held-out rows of the
        candidate's run."""
        info = self.studies.study(study_id)
        if info["sides"]["candidate"]["run_id"] is None:
            raise EngineError("study_perplexity_needs_adapter", {"study_id": study_id},
                              hint="hint_study_candidate_adapter")
        return metrics.eval_perplexity(self.chat, info["run_dir"], info["baseline_dir"])

    def export_study(self, study_id: int, kind: str, path: str | Path | None = None) -> Path:
        """Write the study's votes with the key (`kind` csv or jsonl) or its DPO preference pairs
        (`preferences`) to `path` (default: a new temporary folder); returns the file."""
        name = f"study-{study_id}-preferences.jsonl" if kind == "preferences" else f"study-{study_id}-votes.{kind}"
        path = Path(self.workspace.check(path, "export")) if path else Path(tempfile.mkdtemp(prefix="study-")) / name
        if kind == "preferences":
            self.studies.export_preferences(study_id, path)
            return path
        return self.studies.export_votes(study_id, path, kind)

    # the loop: votes -> a DPO run -> the next study
    def prepare_dpo_from_study(self, study_id: int, config: TrainConfig | None = None) -> tuple[TrainConfig, dict]:
        """The DPO run that learns from the study's votes, ready for `start`: its preference pairs are written to
        `<data folder>/studies/study-<id>-preferences.jsonl` and its questions beside them; the config is the `dpo`
        preset over `config` (default: the candidate run's own) continuing the candidate adapter. Returns it with
        "pairs" and the vote counts {"votes", "decided", "split", "ties", "both_bad", "repeats"} (votes is the sum of
        the other five); `study_no_pairs` when no question's votes choose A or B."""
        return loop.prepare_dpo(self.studies, study_id, self.data_root / "studies", config)

    def followup_study(self, choice: str) -> dict:
        """What the next study of a DPO run's adapter (`choice`: the run, or `run@checkpoint-N`) needs: {"name",
        "questions_path", "choice" (that checkpoint, else the run's final adapter, else its latest checkpoint),
        "baseline" (the adapter it started from), "questions_seen_in_training"}; `followup_needs_dpo` for a run
        without init_adapter."""
        run_id, checkpoint = adapters.split_choice(choice or "")
        run_dir = self.run_dir(run_id)
        if run_dir is None:
            raise EngineError("run_not_found", {"path": choice or "-"}, hint="hint_pick_run")
        return loop.followup(run_dir, self.data_root / "studies", checkpoint)
