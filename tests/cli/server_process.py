"""What the process tests share: the tool run as a subprocess, and a `portcullis serve` started
from a config file with its log kept, then killed and cleaned up after each test."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

EXE = os.environ.get("PORTCULLIS", "portcullis")


def run(*args, timeout=60, check=True, stdin=None):
    """Runs the tool; returns (exit code, stdout, stderr)."""
    p = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout,
                       input=stdin)
    if check and p.returncode != 0:
        raise AssertionError(f"portcullis {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p.returncode, p.stdout, p.stderr


class ServerProcess:
    """A unittest.TestCase mixin: a temporary folder and at most one server in it. The folder is
    kept when the test failed, for its log."""

    def make_folder(self, prefix):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.server = None
        self.server_log = None

    def tearDown(self):
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGKILL)
            self.server.wait(timeout=20)
        if self.server:
            self.server.stdout.close()
        if self.server_log:
            self.server_log.close()
        if sys.exc_info()[0] is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def log(self):
        with open(self.path("server.log")) as f:
            return f.read()

    def serve_config(self, config):
        """Starts `serve --config CONFIG --json`; returns its ready line (bounded: the server
        exits on any start-up error)."""
        self.server_log = open(self.path("server.log"), "w")
        self.server = subprocess.Popen([EXE, "serve", "--config", config, "--json"],
                                       stdout=subprocess.PIPE, stderr=self.server_log, text=True)
        line = self.server.stdout.readline()
        if not line:
            self.server.wait(timeout=10)
            raise AssertionError(f"serve did not start: {self.log()}")
        return json.loads(line)
