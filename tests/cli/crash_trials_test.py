#!/usr/bin/env python3
"""Process test: a short run of scripts/crash-trials. kill -9 at random moments against one
`portcullis serve` (fs storage) while three writers send changes through it; after every
restart each acknowledged change must be served, none twice, and every document must load. Also
checks that the script's checker catches a lost change, a duplicate and a document that does not
load, and that a writer interrupted before the server's acknowledgement does not exit 0, so that
a clean run means something.

Run by meson (suite `process`) with PORTCULLIS set to the built executable and CRASH_TRIALS to
the script. The seed is printed; PORTCULLIS_TEST_SEED reproduces a run.
"""
import importlib.machinery
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

EXE = os.environ.get("PORTCULLIS", "portcullis")
SCRIPT = os.environ["CRASH_TRIALS"]
SEED = int(os.environ.get("PORTCULLIS_TEST_SEED", str(random.SystemRandom().randrange(1 << 30))))


def load_script():
    loader = importlib.machinery.SourceFileLoader("crash_trials", SCRIPT)
    spec = importlib.util.spec_from_loader("crash_trials", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class CrashTrialsTest(unittest.TestCase):
    def trials(self, provider, count):
        p = subprocess.run([sys.executable, SCRIPT, str(count), "--seed", str(SEED),
                            "--provider", provider, "--exe", EXE],
                           capture_output=True, text=True, timeout=150)
        lines = [json.loads(line) for line in p.stdout.splitlines()]
        context = f"seed {SEED}, {provider}:\n{p.stdout}{p.stderr}"
        self.assertEqual(p.returncode, 0, context)
        summary = lines[-1]
        self.assertTrue(summary["summary"], context)
        self.assertEqual(summary["trials"], count, context)
        self.assertEqual(len([l for l in lines if "trial" in l]), count, context)
        self.assertGreater(summary["acknowledged"], 0, context)
        self.assertGreaterEqual(summary["checked"], summary["acknowledged"], context)
        self.assertEqual(summary["lost"], 0, context)
        self.assertEqual(summary["duplicated"], 0, context)
        self.assertEqual(summary["load_failures"], 0, context)

    def test_nothing_acknowledged_is_lost_or_doubled_through_kill_9_with_shared_key(self):
        self.trials("shared-key", 6)

    def test_nothing_acknowledged_is_lost_or_doubled_through_kill_9_with_document_id(self):
        self.trials("document-id", 4)

    def test_the_checker_counts_a_lost_change_a_duplicate_and_a_document_that_does_not_load(self):
        script = load_script()
        ledger = script.Ledger()
        ledger.list_acked = {"w0-1", "w1-2"}
        ledger.key_acked = {(0, "k3"): 3, (1, "k4"): 4}

        class Served:
            def __init__(self, docs):
                self.docs = docs

            def read(self, url):
                return self.docs.get(url)

        served = Served({"shared": {"log": ["w0-1", "w2-9", "w2-9"]},  # w1-2 lost, w2-9 twice
                         "own0": {"k3": 3},
                         "own1": {"k4": 5}})                           # k4 lost (wrong value)
        checked, lost, duplicated, unloadable = script.verify(
            served, ledger, "shared", ["own0", "own1"], ["made"])      # "made" does not load
        self.assertEqual((checked, lost, duplicated, unloadable), (5, 3, 1, ["made"]))

        clean = Served({"shared": {"log": ["w1-2", "w0-1"]}, "own0": {"k3": 3},
                        "own1": {"k4": 4}, "made": {}})
        self.assertEqual(script.verify(clean, ledger, "shared", ["own0", "own1"], ["made"]),
                         (5, 0, 0, []))

    def test_a_writer_stopped_by_a_signal_before_the_acknowledgement_does_not_exit_0(self):
        """The trials count exit 0 as acknowledged, so a writer interrupted while it waits must
        fail, not exit 0 as if the server had stored its change."""
        script = load_script()
        work = tempfile.mkdtemp(prefix="portcullis-crash-signal-")
        node = script.Node(EXE, work, "document-id", random.Random(SEED))
        node.start()
        try:
            url = node.write(node.reader, "new")["url"]
            os.kill(node.proc.pid, signal.SIGSTOP)  # it never answers, nor acknowledges
            for args in ((node.clients[0], "set", url, "/k", "1"), (node.clients[0], "new")):
                writer = subprocess.Popen(node.doc_args(*args), stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True)
                time.sleep(1.0)
                writer.send_signal(signal.SIGTERM)
                out, err = writer.communicate(timeout=30)
                self.assertEqual(writer.returncode, 1, f"doc {args[1]}: {out}{err}")
                self.assertIn("interrupted by a signal", err)
                self.assertEqual(out, "")
        finally:
            os.kill(node.proc.pid, signal.SIGCONT)
            node.kill()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(f"seed {SEED}", file=sys.stderr)
    unittest.main()
