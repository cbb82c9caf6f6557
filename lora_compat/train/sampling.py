"""Sample images during training: the engine's side of sd-scripts' ``sample_images_common``.

:func:`sample_images` is called by the engine before training (``global_step`` 0, ``epoch`` 0), after every
optimizer step (``epoch`` None) and at the end of every epoch (``epoch`` = the 1-based number just finished); it
decides with :func:`lora_compat.semantics.samples.sample_due` whether images are made, then for the plan's prompts:

* saves torch's CPU and CUDA RNG states (sd-scripts does the same) and restores them afterwards, so the training's
  random stream is the one a run without samples draws;
* puts the models in eval mode (restored afterwards) and asks the family for a sampler
  (:meth:`~lora_compat.train.family.TrainingFamily.open_sampler`), which makes each image with the LoRA applied;
* seeds torch per prompt as sd-scripts (``torch.manual_seed`` + ``torch.cuda.manual_seed`` with ``--d``, else
  ``torch.seed()`` + ``torch.cuda.seed()``);
* writes ``<output_dir>/sample/<sd-scripts' name>.png`` atomically, logs each image to TensorBoard as
  ``sample_<index>`` when the run logs there (sd-scripts logs images to wandb only);
* closes the sampler and clears the device cache.

Only the main process makes images (sd-scripts spreads the prompts over the processes; seeded prompts give the
same images either way); the others wait.
"""

from __future__ import annotations

import gc
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lora_compat.semantics.samples import sample_due, sample_image_name


def sample_images(*, family: Any, models: Any, plan: Any, ctx: Any, accelerator: Any, global_step: int,
                  epoch: int | None, tracker: Any = None, say: Callable[[str], None] = lambda m: None) -> list[Path]:
    """Make the plan's sample images when sd-scripts would at this call; returns the files written."""
    sp = plan.samples
    if not sp.enabled or not sample_due(global_step=global_step, epoch=epoch, every_n_steps=sp.every_n_steps,
                                        every_n_epochs=sp.every_n_epochs, at_first=sp.at_first):
        return []
    written: list[Path] = []
    if accelerator.is_main_process:
        written = _make_images(family, models, plan, ctx, global_step, epoch, tracker, say)
    accelerator.wait_for_everyone()
    return written


def _make_images(family: Any, models: Any, plan: Any, ctx: Any, global_step: int, epoch: int | None,
                 tracker: Any, say: Callable[[str], None]) -> list[Path]:
    import torch

    from lora_compat.atomic import write_bytes

    sp, out = plan.samples, plan.outputs
    folder = Path(sp.output_dir)
    cpu_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    modes = [(m, m.training) for m in models.all_modules]
    written: list[Path] = []
    sampler = None
    try:
        for m, _ in modes:
            m.eval()
        sampler = family.open_sampler(models, plan, ctx)
        for prompt in sp.prompts:
            if prompt.seed is not None:
                torch.manual_seed(prompt.seed)
                torch.cuda.manual_seed(prompt.seed)
            else:
                torch.seed()
                if torch.cuda.is_available():
                    torch.cuda.seed()
            image = sampler.generate(prompt, sampler=sp.sampler)
            name = sample_image_name(output_name=out.output_name, index=prompt.index, global_step=global_step,
                                     epoch=epoch, seed=prompt.seed)
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            write_bytes(folder / name, buf.getvalue())
            written.append(folder / name)
            if tracker is not None:   # lora_compat.train.trackers.sample_image_logger
                tracker(prompt.index, image, prompt.prompt, global_step)
        say(f"sample images at step {global_step}: {len(written)} in {folder}")
    finally:
        if sampler is not None:
            sampler.close()
        del sampler
        for m, training in modes:
            m.train(training)
        torch.set_rng_state(cpu_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return written
