"""``ganvoice corpus pack``: a balanced, compressed subset of a corpus that trains like the original."""

import soundfile as sf
from click.testing import CliRunner
from synthetic_corpus import write_corpus

from ganvoice.cli import cli
from ganvoice.corpus.manifest import read_manifest


def test_pack_is_balanced_compressed_and_stable(tmp_path):
    clips = (
        [("sine", 1.0, "train", "a")] * 4 + [("chirp", 1.0, "train", "b")] * 4 + [("noise", 1.0, "val", "a")]
    )
    manifest = write_corpus(tmp_path / "corpus", clips)
    args = [
        "corpus",
        "pack",
        "--data",
        str(manifest),
        "--out",
        str(tmp_path / "pack"),
        "--hours",
        str(4.0 / 3600),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    entries = read_manifest(tmp_path / "pack")
    train = [e for e in entries if e.split == "train"]
    assert sorted(e.source for e in train) == ["a", "a", "b", "b"]  # round-robin over sources
    assert [e.split for e in entries].count("val") == 1
    for entry in entries:
        info = sf.info(tmp_path / "pack" / entry.path)
        assert info.format == "OGG" and info.samplerate == entry.sample_rate
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and read_manifest(tmp_path / "pack") == entries
