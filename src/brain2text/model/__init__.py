"""The decoder network (:mod:`.gru`), its CTC arithmetic (:mod:`.ctc`) and precision."""
