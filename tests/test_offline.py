"""Nothing reaches the network: loading and scoring with a local LLM opens no socket."""

from __future__ import annotations

import importlib
import os
import socket
import sys

import pytest

from tests.conftest import NetworkBlocked


def test_the_fixture_blocks_connections_and_lookups(no_network):
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("127.0.0.1", 9))
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("huggingface.co", 443)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(NetworkBlocked):
        s.connect(("127.0.0.1", 9))


def test_loading_and_scoring_a_local_llm_touches_no_network(tiny_llm, no_network, monkeypatch):
    pytest.importorskip("transformers", reason="the llm extra is not installed")
    import brain2text.decoding

    # a fresh import, undone afterwards so that other tests keep the module they imported
    monkeypatch.delitem(sys.modules, "brain2text.decoding.llm", raising=False)
    monkeypatch.delattr(brain2text.decoding, "llm", raising=False)
    llm = importlib.import_module("brain2text.decoding.llm")
    scorer = llm.load_scorer(tiny_llm, device="auto", batch_size=2)
    scores = scorer.score(["the boy can see a dog", "", "i will go"])
    assert scores[1] == 0.0 and scores[0] < 0 and scores[2] < 0
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
