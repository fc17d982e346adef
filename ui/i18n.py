"""Every visible UI string in English and 中文, and the registry that relabels the page on a switch.

Strings are rendered on the server so that the language chosen in the app (or with `--lang`) also
applies to messages built at run time (status lines, engine errors worded from their codes).
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from engine.locales import render

LANG_CHOICES = [("中文", "zh"), ("English", "en")]

STRINGS: dict[str, tuple[str, str]] = {
    "title": ("## Fine-tuning studio", "## 微调工作室"),
    "subtitle": ("Turn your own examples into a LoRA adapter, watch it learn, and compare it with the base model.",
                 "用您自己的示例训练 LoRA 适配器，实时观察学习过程，并与基础模型对比。"),
    "language": ("Language", "语言"),
    # tabs
    "tab_dataset": ("1. Dataset", "1. 数据集"),
    "tab_params": ("2. Hyperparameters", "2. 超参数"),
    "tab_training": ("3. Training", "3. 训练"),
    "tab_chat": ("4. Chat", "4. 对话"),
    "tab_study": ("5. Blind study", "5. 盲评"),
    "study_intro": ("Prove the adapter is better: experts judge base and adapter answers side by side without knowing which is which. Set up a study, pre-generate the answers, let raters judge, then unblind.",
                    "证明适配器更好：专家在不知道哪个是哪个的情况下，对基础模型和适配器的回答并排评判。创建评测、预先生成回答、请评审打分，最后揭晓结果。"),
    "study_organise": ("Set up (organiser)", "创建评测（组织者）"),
    "study_name": ("Study name", "评测名称"),
    "study_questions": ("Question file", "问题文件"),
    "study_questions_info": ("CSV or JSONL with a prompt (or question) column; optional domain and reference columns.",
                             "CSV 或 JSONL，需有 prompt（或 question）列；可选 domain 和 reference 列。"),
    "study_held_out": ("Use the run's held-out rows", "使用该训练留出的评估数据"),
    "study_held_out_done": ("{count} held-out questions (with reference answers) saved to {path}; create the study to use them.",
                            "已把 {count} 个留出问题（含参考答案）保存到 {path}；点击创建评测即可使用。"),
    "study_criteria": ("Criteria to score (comma separated)", "评分维度（用逗号分隔）"),
    "study_password": ("Study password", "评测密码"),
    "study_password_info": ("Raters must enter it; use one whenever the app is reachable from other computers.",
                            "评审需要输入该密码；当应用可被其他电脑访问时请务必设置。"),
    "study_repeats": ("Repeated items per rater", "每位评审的重复题数"),
    "study_repeats_info": ("Shown again with the sides swapped, to measure how consistent each rater is.",
                           "左右互换后再次出现，用来衡量评审前后是否一致。"),
    "study_create": ("Create study", "创建评测"),
    "study_generate": ("Generate answers", "生成回答"),
    "study_pick": ("Study", "评测"),
    "study_rate": ("Rate (experts)", "打分（专家）"),
    "rater_name": ("Your name", "您的名字"),
    "rater_begin": ("Start or continue", "开始或继续"),
    "answer_a": ("Answer A", "回答 A"),
    "answer_b": ("Answer B", "回答 B"),
    "rate_choice": ("Which answer is better?", "哪个回答更好？"),
    "choice_A": ("A is better", "A 更好"),
    "choice_B": ("B is better", "B 更好"),
    "choice_tie": ("Equally good", "一样好"),
    "choice_both_bad": ("Both are bad", "都不好"),
    "rate_comment": ("Comment (optional)", "备注（可选）"),
    "rate_submit": ("Submit and next", "提交并下一题"),
    "rate_skip": ("Skip for now", "暂时跳过"),
    "rate_progress": ("Question {done} of {total} answered.", "已完成 {done} / {total} 题。"),
    "rate_done": ("All questions are judged. Thank you!", "所有题目都已评完，谢谢！"),
    "rate_not_ready": ("The answers have not been generated yet: ask the organiser.", "回答尚未生成，请联系组织者。"),
    "rate_begin_first": ("Enter your name and press Start first.", "请先输入名字并点击开始。"),
    "rate_choose": ("Choose which answer is better first.", "请先选择哪个回答更好。"),
    "study_none": ("Choose or create a study first.", "请先选择或创建一个评测。"),
    "study_wrong_password": ("Wrong study password.", "评测密码不正确。"),
    "study_created": ("Study {id} created with {count} questions. Next: Generate answers.", "评测 {id} 已创建，共 {count} 题。下一步：生成回答。"),
    "study_generated": ("{count} answer pair(s) generated; {flagged} flagged as possibly revealing a model's identity.",
                        "已生成 {count} 组回答；其中 {flagged} 组可能暴露了模型身份，已标记。"),
    "study_results": ("Results (organiser, unblinded)", "结果（组织者，揭晓）"),
    "study_unblind": ("Unblind and show results", "揭晓并显示结果"),
    "study_votes": ("**{n} votes.** Outcomes for the adapter, with 95% confidence intervals:", "**共 {n} 票。** 适配器的结果（95% 置信区间）："),
    "outcome_win": ("adapter better", "适配器更好"),
    "outcome_loss": ("base better", "基础模型更好"),
    "outcome_tie": ("tie", "一样好"),
    "outcome_both_bad": ("both bad", "都不好"),
    "study_sign_test": ("Sign test ({wins} wins vs {losses} losses, ties left out): p = {p}.", "符号检验（{wins} 胜 {losses} 负，不计平局）：p = {p}。"),
    "study_criterion": ("{name}: adapter {adapter:.2f} vs base {base:.2f} (mean score 1-5).", "{name}：适配器 {adapter:.2f}，基础模型 {base:.2f}（平均分 1-5）。"),
    "study_fleiss": ("Agreement between all raters (Fleiss' kappa): {kappa:.2f} on {items} items.", "所有评审的一致性（Fleiss' kappa）：{kappa:.2f}，共 {items} 题。"),
    "study_cohen": ("Agreement of {a} and {b} (Cohen's kappa): {kappa:.2f} on {items} items.", "{a} 与 {b} 的一致性（Cohen's kappa）：{kappa:.2f}，共 {items} 题。"),
    "study_flagged": ("{count} item(s) were flagged as possibly revealing a model's identity.", "{count} 题被标记为可能暴露模型身份。"),
    "group_kind_domain": ("domain", "领域"),
    "group_kind_rater": ("rater", "评审"),
    "col_group_kind": ("By", "分组"),
    "col_group": ("Group", "组"),
    "study_metrics": ("Automatic metrics", "自动指标"),
    "metrics_reference": ("{side}: ROUGE-L {rouge:.3f}, BLEU {bleu:.3f} against the reference answers ({n} questions).",
                          "{side}：与参考答案相比 ROUGE-L {rouge:.3f}，BLEU {bleu:.3f}（{n} 题）。"),
    "metrics_no_reference": ("No question has a reference answer, so ROUGE-L and BLEU are not computed.",
                             "没有题目提供参考答案，因此不计算 ROUGE-L 和 BLEU。"),
    "metrics_perplexity": ("{side}: loss {loss:.3f}, perplexity {ppl:.2f} on {rows} held-out rows.",
                           "{side}：在 {rows} 行留出数据上的损失 {loss:.3f}，困惑度 {ppl:.2f}。"),
    "side_base": ("Base model", "基础模型"),
    "side_adapter": ("With adapter", "加载适配器后"),
    "export_votes_csv": ("Export votes (CSV)", "导出投票（CSV）"),
    "export_votes_jsonl": ("Export votes (JSONL)", "导出投票（JSONL）"),
    "export_preferences": ("Export preference pairs for DPO", "导出 DPO 偏好数据"),
    # dataset tab
    "dataset_intro": ("Pick a dataset file. The bundled customer-service sample is preselected so you can click straight through.",
                      "选择数据集文件。已预选内置的客服示例数据，可以直接点下一步。"),
    "dataset_path": ("Dataset file path", "数据集文件路径"),
    "dataset_path_info": ("JSONL, JSON, CSV, TSV, Parquet or Excel (.xlsx) on this computer.",
                          "本机上的 JSONL、JSON、CSV、TSV、Parquet 或 Excel（.xlsx）文件。"),
    "dataset_upload": ("…or upload a file", "……或上传文件"),
    "dataset_check": ("Load and check", "加载并检查"),
    "dataset_summary": ("**{path}**: format **{format}**, {rows} rows, {usable} usable, {errors} errors, {warnings} warnings.",
                        "**{path}**：格式 **{format}**，共 {rows} 行，可用 {usable} 行，错误 {errors} 个，警告 {warnings} 个。"),
    "dataset_ok": ("Ready to train.", "可以开始训练。"),
    "dataset_bad": ("Not usable yet: fix the errors listed below.", "暂不可用：请先修正下面列出的错误。"),
    "dataset_some_bad": ("Rows with errors will be left out of training.", "有错误的行将不参与训练。"),
    "dataset_languages": ("Languages: {zh} Chinese, {en} English, {other} other rows.",
                          "语言：中文 {zh} 行，英文 {en} 行，其他 {other} 行。"),
    "dataset_tokens": ("About {tokens} training tokens per epoch; longest row {longest} tokens; {truncated} row(s) longer than max length {max_length}.",
                       "每轮约 {tokens} 个训练词元；最长一行 {longest} 个词元；{truncated} 行超过最大长度 {max_length}。"),
    "length_histogram": ("Row lengths in tokens (as the model sees them)", "每行的词元长度（按模型实际看到的计算）"),
    "length_tokens": ("tokens", "词元数"),
    "length_rows": ("rows", "行数"),
    "mapping_title": ("Column mapping", "列映射"),
    "mapping_intro": ("The format and columns were guessed from the column names. Change them if the guess is wrong, then apply.",
                      "格式和列是根据列名推测的。如果不对，请修改后点击应用。"),
    "mapping_format": ("Format", "格式"),
    "mapping_apply": ("Apply mapping and check", "应用映射并检查"),
    "exclude_bad": ("Exclude rows with errors", "排除有错误的行"),
    "nothing_to_exclude": ("No rows with errors to exclude.", "没有需要排除的错误行。"),
    "excluded": ("{count} row(s) excluded; saved as {path} (Undo brings them back).",
                 "已排除 {count} 行，保存为 {path}（可用“撤销”恢复）。"),
    "preview_title": ("What the model sees", "模型实际看到的内容"),
    "preview_intro": ("The row after the model's chat template. Green is trained on, grey is context, red is cut by the max length. Chat uses the same template.",
                      "套用模型对话模板后的样子。绿色部分参与训练，灰色是上下文，红色会因超过最大长度被截掉。对话页使用同一个模板。"),
    "preview_show": ("Show", "显示"),
    "preview_no_row": ("Row {row} is not a usable row of this dataset.", "第 {row} 行不是此数据集中可用的行。"),
    "editor_title": ("Edit rows", "编辑数据"),
    "editor_search": ("Search", "搜索"),
    "editor_page_label": ("Page", "页码"),
    "editor_previous": ("◀", "◀"),
    "editor_next": ("▶", "▶"),
    "editor_page": ("Page {page} of {pages} · {rows} rows. Edit cells, then press Apply edits; Save keeps a new version.",
                    "第 {page}/{pages} 页 · 共 {rows} 行。修改单元格后点击“应用修改”；“保存”会生成新版本。"),
    "editor_empty": ("No dataset is open: press Load and check first.", "还没有打开数据集：请先点击“加载并检查”。"),
    "editor_apply": ("Apply edits", "应用修改"),
    "editor_add": ("Add row", "添加一行"),
    "editor_duplicate": ("Duplicate row", "复制该行"),
    "editor_delete": ("Delete row", "删除该行"),
    "editor_dedup": ("Remove exact duplicates", "删除完全重复的行"),
    "editor_strip": ("Strip whitespace", "去除首尾空白"),
    "editor_drop_empty": ("Drop empty rows", "删除空行"),
    "editor_undo": ("Undo", "撤销"),
    "editor_save": ("Save version", "保存版本"),
    "editor_export": ("Export JSONL", "导出 JSONL"),
    "editor_exported": ("Exported file", "导出的文件"),
    "editor_applied": ("{count} row(s) changed.", "已修改 {count} 行。"),
    "editor_added": ("Row {count} added.", "已添加第 {count} 行。"),
    "editor_duplicated": ("Copy added as row {count}.", "副本已添加为第 {count} 行。"),
    "editor_deleted": ("{count} row(s) deleted.", "已删除 {count} 行。"),
    "editor_deduped": ("{count} duplicate row(s) removed.", "已删除 {count} 个重复行。"),
    "editor_stripped": ("{count} cell(s) trimmed.", "已清理 {count} 个单元格。"),
    "editor_dropped": ("{count} empty row(s) dropped.", "已删除 {count} 个空行。"),
    "editor_undone": ("Undone.", "已撤销。"),
    "editor_saved": ("Saved as {path}", "已保存为 {path}"),
    "issues_table": ("Problems found", "发现的问题"),
    "preview_table": ("First rows", "前几行"),
    "col_severity": ("Severity", "级别"),
    "col_row": ("Row", "行"),
    "col_field": ("Field", "字段"),
    "col_message": ("Message", "说明"),
    "severity_error": ("error", "错误"),
    "severity_warning": ("warning", "警告"),
    # hyperparameters tab
    "params_intro": ("Start from a preset; the main settings are shown, the rest are under Advanced. Hover the labels for help.",
                     "从预设开始；这里显示主要设置，其余在“高级”中。每个设置下方都有说明。"),
    "preset": ("Preset", "预设"),
    "preset_info": ("Fills in the settings below; you can still change them.", "自动填好下面的设置，之后仍可修改。"),
    "advanced": ("Advanced", "高级"),
    "modules_attention": ("Attention only (q, k, v, o)", "仅注意力层（q、k、v、o）"),
    "modules_all": ("All linear layers", "全部线性层"),
    "trainable_line": ("Trainable parameters: **{trainable}** of {total} (**{pct:.2f}%**).",
                       "可训练参数：**{trainable}** / {total}（**{pct:.2f}%**）。"),
    "plan_check": ("Check before training", "训练前检查"),
    "plan_title": ("Before training", "训练前检查"),
    "as_script": ("Copy as a Python script (plain TRL + PEFT)", "复制为 Python 脚本（纯 TRL + PEFT）"),
    "preset_name": ("Save these settings as a preset", "把当前设置保存为预设"),
    "preset_name_info": ("A short name: lower-case letters, digits, - and _.", "简短的名字：小写字母、数字、- 和 _。"),
    "preset_save": ("Save preset", "保存预设"),
    "preset_saved": ("Preset '{name}' saved.", "预设“{name}”已保存。"),
    "group_model": ("Model and quantization", "模型与量化"),
    "group_data": ("Data", "数据"),
    "group_lora": ("LoRA", "LoRA"),
    "group_training": ("Training", "训练"),
    "group_evaluation": ("Evaluation and saving", "评估与保存"),
    "show_yaml": ("Show as YAML", "以 YAML 显示"),
    # training tab
    "start": ("Start training", "开始训练"),
    "stop": ("Stop", "停止"),
    "status_idle": ("No run yet. Press **Start training**.", "还没有训练。请点击 **开始训练**。"),
    "status_line": ("**{state}** · run `{run_id}` · step {step}/{max_steps} · epoch {epoch:.2f} · loss {loss} · eval loss {eval_loss}",
                    "**{state}** · 训练 `{run_id}` · 第 {step}/{max_steps} 步 · 第 {epoch:.2f} 轮 · 损失 {loss} · 评估损失 {eval_loss}"),
    "status_error": ("**{message}** {hint}", "**{message}** {hint}"),
    "loss_plot": ("Loss", "损失"),
    "plot_step": ("step", "步数"),
    "plot_loss": ("training loss", "训练损失"),
    "plot_eval_loss": ("eval loss", "评估损失"),
    "plot_smoothed": ("training loss (smoothed)", "训练损失（平滑）"),
    "plot_lr": ("learning rate", "学习率"),
    "plot_grad_norm": ("gradient norm", "梯度范数"),
    "plot_tokens_per_second": ("tokens per second", "每秒词元数"),
    "plot_memory": ("memory in use (MB)", "内存占用（MB）"),
    "metrics_plot": ("Learning rate, gradients, speed, memory", "学习率、梯度、速度、内存"),
    "progress_line": ("`{bar}` {pct}% · step {step}/{max_steps} · epoch {epoch:.2f} · elapsed {elapsed} · left {eta}",
                      "`{bar}` {pct}% · 第 {step}/{max_steps} 步 · 第 {epoch:.2f} 轮 · 已用 {elapsed} · 剩余 {eta}"),
    "resume": ("Resume selected run", "恢复所选训练"),
    "runs_title": ("Runs history", "训练记录"),
    "runs_pick": ("Run", "训练"),
    "runs_compare": ("Overlay another run", "叠加另一次训练"),
    "runs_show": ("Show", "查看"),
    "runs_delete": ("Delete run", "删除训练"),
    "runs_deleted": ("Run {run_id} deleted.", "训练 {run_id} 已删除。"),
    "resumed": ("Resuming {run_id} from its latest checkpoint.", "正在从最新检查点恢复训练 {run_id}。"),
    "col_run": ("Run", "训练"),
    "col_state": ("State", "状态"),
    "col_steps": ("Steps", "步数"),
    "col_loss": ("Final loss", "最终损失"),
    "col_eval_loss": ("Final eval loss", "最终评估损失"),
    "col_duration": ("Duration", "用时"),
    "col_adapter": ("Adapter", "适配器"),
    "started": ("Training started: {run_id}", "训练已开始：{run_id}"),
    "stop_requested": ("Stopping after the current step; the adapter will be saved.", "将在当前步骤结束后停止，并保存适配器。"),
    "nothing_to_stop": ("No run is in progress.", "当前没有正在进行的训练。"),
    # chat tab
    "chat_intro": ("Ask one question; the base model and your adapter answer with the same template and settings.",
                   "提一个问题；基础模型和您的适配器使用相同的模板和设置回答。"),
    "run": ("Adapter (trained run)", "适配器（已训练的运行）"),
    "run_info": ("A run's final adapter, or one of its checkpoints to see how the answers changed during training.",
                 "某次训练的最终适配器，或它的某个检查点（可以看到回答在训练过程中如何变化）。"),
    "checkpoint_at_step": ("checkpoint at step {step}", "第 {step} 步的检查点"),
    "refresh": ("Refresh", "刷新"),
    "prompt": ("Your question", "您的问题"),
    "prompt_placeholder": ("e.g. My parcel has not arrived after five days. What can I do?", "例如：包裹五天了还没到，怎么办？"),
    "ask": ("Ask both", "同时提问"),
    "chat_clear": ("New conversation", "新对话"),
    "gen_settings": ("Generation settings (the same for both sides)", "生成设置（两侧相同）"),
    "gen_max_new_tokens": ("Max new tokens", "最多生成词元数"),
    "gen_temperature": ("Temperature", "温度"),
    "gen_temperature_info": ("0 is greedy: the same answer every time.", "0 表示贪心解码：每次回答相同。"),
    "gen_top_p": ("Top-p", "Top-p"),
    "gen_repetition_penalty": ("Repetition penalty", "重复惩罚"),
    "gen_seed": ("Seed", "随机种子"),
    "gen_system_prompt": ("System prompt", "系统提示词"),
    "gen_system_prompt_info": ("Optional; empty keeps the model's default.", "可选；留空则使用模型默认。"),
    "answer_base": ("Base model", "基础模型"),
    "answer_adapter": ("With adapter", "加载适配器后"),
    "no_runs": ("No finished run yet: train one on the Training tab.", "还没有完成的训练：请先在“训练”页训练。"),
    "empty_prompt": ("Type a question first.", "请先输入问题。"),
}

FIELD_TEXT: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "model_name_or_path": (("Base model", "基础模型"),
                           ("The bundled SmolLM2-135M works offline; a local folder, a .gguf file or a hub id also work.",
                            "内置 SmolLM2-135M 可离线使用；也可填本地文件夹、.gguf 文件或 Hub 模型名。")),
    "load_in_4bit": (("4-bit quantization (QLoRA)", "4 位量化（QLoRA）"),
                     ("Loads the base model in 4-bit NF4 to save memory; needed for 7-8B models on a 24 GB card.",
                      "以 4 位 NF4 加载基础模型以节省显存；在 24 GB 显卡上训练 7-8B 模型需要开启。")),
    "load_in_8bit": (("8-bit quantization", "8 位量化"), ("Loads the base model in 8-bit (CUDA only).", "以 8 位加载基础模型（仅限 CUDA）。")),
    "bnb_4bit_quant_type": (("4-bit type", "4 位类型"), ("NF4 suits normally distributed weights; keep it.", "NF4 适合正态分布的权重，建议保持。")),
    "use_bnb_nested_quant": (("Double quantization", "双重量化"), ("Quantizes the scales too; saves about 0.4 bits per weight.",
                                                                "对量化常数再量化，每个参数约节省 0.4 位。")),
    "dtype": (("Weight precision", "权重精度"), ("auto: float32 on CPU, bfloat16 on recent GPUs.", "auto：CPU 上用 float32，新显卡上用 bfloat16。")),
    "dataset_path": (("Dataset", "数据集"), ("Chosen on the Dataset tab.", "在“数据集”页选择。")),
    "eval_split": (("Eval split", "评估集比例"), ("Share of rows held out to measure eval loss (0 turns evaluation off).",
                                                "留出多少比例的数据用于计算评估损失（0 表示不评估）。")),
    "eval_rows": (("Eval rows", "评估集行数"), ("If above 0, hold out exactly this many rows instead of a share.",
                                              "大于 0 时，按行数留出评估集，而不是按比例。")),
    "mix_dataset_path": (("Mix-in dataset", "混入数据集"), ("Optional general data mixed into training so the model keeps its broad skills.",
                                                          "可选：混入通用数据，避免模型遗忘原有能力。")),
    "mix_ratio": (("Mix-in ratio", "混入比例"), ("Rows drawn from the mix-in dataset, as a share of the training rows.",
                                            "从混入数据集中抽取的行数，占训练行数的比例。")),
    "max_length": (("Max length (tokens)", "最大长度（词元）"), ("Longer rows are cut; longer means more memory.",
                                                              "超出的部分会被截断；越长越占内存。")),
    "lora_r": (("LoRA rank r", "LoRA 秩 r"), ("Capacity of the adapter: 8-16 is typical; larger can overfit small data.",
                                           "适配器的容量：常用 8-16；太大在小数据上容易过拟合。")),
    "lora_alpha": (("LoRA alpha", "LoRA alpha"), ("Scales the adapter's effect; usually 1-2 times the rank.", "缩放适配器的作用，通常为秩的 1-2 倍。")),
    "lora_dropout": (("LoRA dropout", "LoRA dropout"), ("Randomly drops adapter inputs to reduce overfitting.", "随机丢弃部分输入以减少过拟合。")),
    "lora_target_modules": (("Target modules", "目标模块"), ("Layers that get an adapter: all-linear, or e.g. q_proj and v_proj.",
                                                          "加装适配器的层：all-linear，或例如 q_proj 和 v_proj。")),
    "use_rslora": (("rsLoRA scaling", "rsLoRA 缩放"), ("Scales by alpha/sqrt(r) instead of alpha/r: steadier with large ranks.",
                                                     "按 alpha/sqrt(r) 而不是 alpha/r 缩放：秩较大时更稳定。")),
    "use_dora": (("DoRA", "DoRA"), ("Weight-decomposed LoRA: often a little better, somewhat slower.",
                                   "权重分解的 LoRA：效果常略好，速度稍慢。")),
    "learning_rate": (("Learning rate", "学习率"), ("2e-4 is the usual LoRA start; too high makes the loss jump around.",
                                                   "LoRA 常用 2e-4；太高会让损失上下震荡。")),
    "num_train_epochs": (("Epochs", "训练轮数"), ("Passes over the data: 1-3 is typical; more can overfit.", "遍历数据的次数：常用 1-3；太多会过拟合。")),
    "max_steps": (("Max steps", "最大步数"), ("If above 0, stops after this many steps (overrides epochs).", "大于 0 时，训练到该步数即停止（覆盖轮数）。")),
    "per_device_train_batch_size": (("Batch size", "批大小"), ("Rows per step; lower it if memory runs out.", "每步处理的行数；内存不够时调小。")),
    "gradient_accumulation_steps": (("Gradient accumulation", "梯度累积"), ("Adds up several batches before each update: a larger effective batch without more memory.",
                                                                          "累积多个批次再更新一次：不增加内存也能得到更大的有效批大小。")),
    "lr_scheduler_type": (("LR schedule", "学习率调度"), ("How the learning rate changes over the run.", "学习率在训练中如何变化。")),
    "warmup_steps": (("Warmup", "预热"), ("Below 1: share of steps; 1 or more: number of steps with a rising learning rate.",
                                        "小于 1：占总步数的比例；大于等于 1：学习率逐步升高的步数。")),
    "weight_decay": (("Weight decay", "权重衰减"), ("A mild pull of weights towards zero.", "对权重的轻微约束，使其趋向 0。")),
    "optim": (("Optimizer", "优化器"), ("paged_adamw_8bit saves GPU memory; adamw_torch works everywhere.", "paged_adamw_8bit 节省显存；adamw_torch 到处可用。")),
    "gradient_checkpointing": (("Gradient checkpointing", "梯度检查点"), ("Saves memory by recomputing activations (about 30-60% slower).",
                                                                       "通过重新计算激活值节省内存（慢约 30-60%）。")),
    "train_sampling_strategy": (("Batching", "批次组成"),
                                ("group_by_length puts rows of similar length together, so little time is spent on padding.",
                                 "group_by_length 把长度相近的行放在同一批，减少在填充上浪费的计算。")),
    "bf16": (("bf16 mixed precision", "bf16 混合精度"), ("Faster on recent NVIDIA GPUs; leave off on CPU.", "在新 NVIDIA 显卡上更快；CPU 上请关闭。")),
    "fp16": (("fp16 mixed precision", "fp16 混合精度"), ("For older GPUs without bf16.", "用于不支持 bf16 的旧显卡。")),
    "seed": (("Seed", "随机种子"), ("Same seed, same data split and same run.", "相同的种子得到相同的数据划分和训练结果。")),
    "logging_steps": (("Log every N steps", "每 N 步记录"), ("How often the loss is reported.", "多久报告一次损失。")),
    "eval_strategy": (("Evaluate", "评估时机"), ("When to compute eval loss: every epoch, every N steps, or never.", "何时计算评估损失：每轮、每 N 步或从不。")),
    "eval_steps": (("Eval every N steps", "每 N 步评估"), ("Used when Evaluate is 'steps'.", "评估时机为 steps 时使用。")),
    "save_steps": (("Checkpoint every N steps", "每 N 步保存检查点"), ("Checkpoints let a stopped run resume.", "检查点可用于恢复训练。")),
    "load_best_model_at_end": (("Keep the best checkpoint", "保留最佳检查点"),
                               ("At the end, the adapter is the one with the lowest eval loss, not the last.",
                                "训练结束时使用评估损失最低的适配器，而不是最后一个。")),
    "early_stopping_patience": (("Early stopping patience", "提前停止耐心值"),
                                ("Stop when the eval loss has not improved for this many evaluations (0 = off).",
                                 "评估损失连续这么多次没有改善时停止训练（0 表示关闭）。")),
    "save_total_limit": (("Checkpoints kept", "保留检查点数"), ("Older checkpoints are deleted.", "更早的检查点会被删除。")),
}


def t(key: str, lang: str, **params: Any) -> str:
    """A UI string (or an engine message code) in `lang`, with params filled in."""
    pair = STRINGS.get(key)
    if pair is None:
        return render(key, params, lang)
    text = pair[1] if lang == "zh" else pair[0]
    return text.format(**params) if params else text


def field_label(name: str, lang: str) -> str:
    return FIELD_TEXT[name][0][lang == "zh"]


def field_help(name: str, lang: str) -> str:
    return FIELD_TEXT[name][1][lang == "zh"]


class Texts:
    """Remembers which component shows which string, so a language switch can relabel them all."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._entries: list[tuple[gr.components.Component, dict[str, tuple[str, str]]]] = []

    def add(self, component, **props: str):
        """Word `component`'s props (label=key, value=key, ...) in the current language and register it."""
        for prop, key in props.items():
            setattr(component, prop, t(key, self.lang))
        self._entries.append((component, {prop: ("ui", key) for prop, key in props.items()}))
        return component

    def worded_choices(self, choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """(label, value) pairs in the current language for (string key, value) pairs."""
        return self._word("choices", tuple(choices), self.lang)

    def add_choices(self, component, choices: list[tuple[str, str]]):
        """Register `component`, built with `worded_choices(choices)`, so a language switch rewords them
        (gradio keeps a component's constructor arguments, so the choices must be given there)."""
        self._entries.append((component, {"choices": ("choices", tuple(choices))}))
        return component

    def add_field(self, component, name: str):
        self._entries.append((component, {"label": ("label", name), "info": ("help", name)}))
        return component

    @property
    def components(self) -> list:
        return [component for component, _props in self._entries]

    def updates(self, lang: str) -> list:
        """One `gr.update` per registered component, worded in `lang`."""
        return [gr.update(**{prop: self._word(kind, key, lang) for prop, (kind, key) in props.items()})
                for _component, props in self._entries]

    @staticmethod
    def _word(kind: str, key, lang: str):
        if kind == "choices":
            return [(t(text_key, lang), value) for text_key, value in key]
        if kind == "label":
            return field_label(key, lang)
        if kind == "help":
            return field_help(key, lang)
        return t(key, lang)
