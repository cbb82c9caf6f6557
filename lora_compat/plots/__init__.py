"""Pictures where people would rather look than read: PNG files drawn with matplotlib's headless Agg canvas.

* :mod:`.lr_schedule` — ``plan --plot``: the learning rate of every parameter group over the optimizer steps, with
  the warmup, the restarts and the epoch boundaries marked;
* :mod:`.lora_blocks` — ``inspect --plot``: rank, alpha and delta-weight norm per block of a LoRA file;
* :mod:`.training` — ``train``'s ``loss.png``: training loss (and its moving average), validation loss and LR.

Every function takes plain numbers (no plan, no torch) and writes the PNG atomically. matplotlib is imported only
when a picture is drawn (never by ``lint``/``show``/``explain``), through
:func:`lora_compat.plots.canvas.pyplot_free_figure`, which uses matplotlib's object API with the Agg canvas: no
display, no global pyplot state.
"""
