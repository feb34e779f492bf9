"""Training tiny-en, the bundled demo model: data, grammars, the TDT loss, training, evaluation.

A development tool, not part of the installed package: ``scripts/train_tiny_model.py`` is the
entry point (running it puts ``scripts/`` on ``sys.path``), and the tests import these modules
by path. Nothing here imports torch or NeMo at module level except :mod:`tinyen.tdt_loss`.

- :mod:`tinyen.lexicon`: word classes over ``scripts/data/words.txt`` and a small CFG engine;
- :mod:`tinyen.grammar` / :mod:`tinyen.heldout`: the training grammar, and the held-out one
  (other templates, plus sentences written by hand);
- :mod:`tinyen.speech`: espeak-ng synthesis; :mod:`tinyen.datasets`: the seeded data plan;
- :mod:`tinyen.model`: tokenizer and the NeMo config; :mod:`tinyen.tdt_loss`: a vectorised
  TDT loss; :mod:`tinyen.train`: the training loop with checkpoints;
- :mod:`tinyen.scoring`: WER/CER/homophones; :mod:`tinyen.evaluate`: offline and cache-aware
  streaming decoding of in-memory arrays.
"""
