"""Scoring decoders, one path from a model's emissions to an evaluation folder.

:mod:`.scoring` runs the network over a split (greedy hypotheses, CTC losses, emissions);
:mod:`.search` turns emissions into words (beam search + LM or a decoding graph, then an
optional n-best rescoring stage); :mod:`.labels` gives the references (always the dataset's
own labels); :mod:`.pipeline` scores and lays out the files (:mod:`.files`) and the summary
(:mod:`.summary`); :mod:`.evaluate`, :mod:`.word_eval`, :mod:`.ensemble` and :mod:`.tuning`
are the commands' entry points. Edit distances and error rates are in :mod:`.metrics` and
:mod:`.words`.
"""
