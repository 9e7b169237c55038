#!/usr/bin/env python3
"""Process tests of `portcullis team ...`: the team provider's offline verbs on state directories.

Run by meson (suite `process`) with PORTCULLIS set to the built executable. Each test works in its
own temporary folder; two members are simulated with two state directories and `team export` /
`team import` files. Every run is bounded by a timeout; each invitation costs one Argon2id run
(~0.1 s) on the inviter and one on the invitee.
"""
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

EXE = os.environ.get("PORTCULLIS", "portcullis")
if os.sep in EXE:
    EXE = os.path.abspath(EXE)  # some tests run in another folder
SEED = int(os.environ.get("PORTCULLIS_TEST_SEED", str(random.SystemRandom().randrange(1 << 30))))
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def document_id(rng):
    """A random document ID in its text form: "portcullis:" + base58check of 16 bytes."""
    raw = bytes(rng.randrange(256) for _ in range(16))
    data = raw + hashlib.sha256(hashlib.sha256(raw).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    text = ""
    while n:
        n, r = divmod(n, 58)
        text = BASE58[r] + text
    text = "1" * (len(data) - len(data.lstrip(b"\0"))) + text
    return "portcullis:" + text


def run(*args, timeout=30, check=True, stdin=None):
    """Runs the tool; returns (exit code, stdout, stderr)."""
    p = subprocess.run([EXE, *args], capture_output=True, text=True, encoding="utf-8",
                       timeout=timeout, input=stdin)
    if check and p.returncode != 0:
        raise AssertionError(f"portcullis {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p.returncode, p.stdout, p.stderr


class TeamTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="portcullis-team-")
        self.rng = random.Random(SEED)

    def tearDown(self):
        if sys.exc_info()[0] is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def team(self, *args, state):
        """`portcullis team ARGS --state DIR --json`, which must succeed; its JSON object."""
        _, out, err = run("team", *args, "--state", self.path(state), "--json")
        self.assertEqual(err, "", args)
        lines = out.splitlines()
        self.assertEqual(len(lines), 1, out)
        return json.loads(lines[0])

    def refused(self, *args, state, code=1):
        """The same, expected to fail with `code` and one line on stderr; returns that line."""
        rc, out, err = run("team", *args, "--state", self.path(state), check=False)
        self.assertEqual(rc, code, f"{args}: {out} {err}")
        self.assertEqual(err.count("\n"), 1, f"{args}: {err}")
        self.assertTrue(err.startswith("portcullis: "), err)
        return err

    def export(self, state):
        """A fresh export of `state`'s links; returns its path."""
        name = f"{state}-{self.rng.randrange(1 << 30)}.links"
        self.team("export", self.path(name), state=state)
        return self.path(name)

    def links_size(self, state):
        return os.path.getsize(os.path.join(self.path(state), "links"))

    def found(self, name="alice", team_name="t"):
        return self.team("init", "--name", team_name, "--user", name, state=name)

    def invite(self, state, *extra):
        return self.team("invite", *extra, state=state)

    def join(self, inviter_state, new_state, code, *extra):
        """The invitee joins from a fresh export of the inviter; returns join's JSON."""
        exported = self.export(inviter_state)
        return self.team("join", code, "--from", exported,
                         "--request-out", self.path(new_state + ".request.json"), *extra,
                         state=new_state)

    def admit_and_sync(self, admitter, new_state, request):
        """The admitter admits `request`, then the new device imports the admitter's links."""
        admitted = self.team("admit", request, state=admitter)
        imported = self.team("import", self.export(admitter), state=new_state)
        self.assertEqual(imported["dropped"], [])
        self.assertGreaterEqual(imported["stored"], 1)
        return admitted

    def add_member(self, admin, user, *invite_args):
        invitation = self.invite(admin, *invite_args)
        joined = self.join(admin, user, invitation["code"], "--user", user)
        self.admit_and_sync(admin, user, joined["request"])
        return joined

    def sync(self, src, dst):
        return self.team("import", self.export(src), state=dst)

    def members(self, state):
        return {m["userId"]: m for m in self.team("members", state=state)["members"]}

    def log(self, state):
        return self.team("log", state=state)["links"]

    # --- the offline walk-through -----------------------------------------------------------

    def test_two_members_join_offline_through_export_and_import(self):
        founded = self.found()
        self.assertRegex(founded["team"], r"^[0-9a-f]{64}$")
        self.assertRegex(founded["device"], r"^[0-9a-f]{64}$")
        invitation = self.invite("alice")
        code = invitation["code"]
        self.assertRegex(code, r"^[1-9A-HJ-NP-Za-km-z]{6}-[1-9A-HJ-NP-Za-km-z]{16}$")
        self.assertEqual((invitation["kind"], invitation["maxUses"], invitation["expiresAt"]),
                         ("member", 1, 0))
        # The code is shown once and kept nowhere.
        for root, _, files in os.walk(self.path("alice")):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    self.assertNotIn(code.split("-")[1].encode(), fh.read(), f)

        joined = self.join("alice", "bob", code, "--user", "bob")
        self.assertEqual((joined["team"], joined["kind"], joined["userId"]),
                         (founded["team"], "member", "bob"))
        with open(joined["request"]) as f:
            request = json.load(f)
        self.assertEqual(set(request), {"team", "invitation", "deviceId", "encKey", "userId",
                                        "consent", "inviteSig"})
        self.assertEqual(request["invitation"], invitation["invitation"])
        # Before the admission, bob's directory knows alice's team but bob is no member.
        self.assertEqual(list(self.members("bob")), ["alice"])
        self.assertIn("not a current device of a member of this team yet",
                      self.refused("devices", state="bob"))

        admitted = self.admit_and_sync("alice", "bob", joined["request"])
        self.assertEqual((admitted["kind"], admitted["userId"]), ("member", "bob"))
        for side in ("alice", "bob"):
            m = self.members(side)
            self.assertEqual(sorted(m), ["alice", "bob"], side)
            self.assertTrue(m["alice"]["admin"])
            self.assertFalse(m["bob"]["admin"])
            self.assertEqual(m["bob"]["devices"], [joined["device"]])
            self.assertEqual(m["alice"]["devices"], [founded["device"]])
        # Bob's own devices, and the human listing on his side.
        devices = self.team("devices", state="bob")["devices"]
        self.assertEqual(devices, [{"deviceId": joined["device"], "member": "bob", "self": True}])
        _, out, _ = run("team", "members", "--state", self.path("bob"))
        self.assertIn("alice (admin)", out)
        self.assertRegex(out, r"bob  roles: -  devices: [0-9a-f]{8} \(this device\)")
        # Bob, now a member, signs too: his link reaches alice valid.
        self.team("invite", "--device", state="bob")
        self.assertEqual(self.sync("bob", "alice")["stored"], 1)
        self.assertTrue(all(link["valid"] for link in self.log("alice")))
        # The invitation was used up: the same request or code cannot be used again.
        self.assertIn("no longer open", self.refused("admit", joined["request"], state="alice"))

    def test_a_device_invitation_admits_a_second_device_of_the_same_member(self):
        founded = self.found()
        invitation = self.invite("alice", "--device")
        self.assertEqual((invitation["kind"], invitation["maxUses"]), ("device", 1))
        # The code from stdin ("-"), kept out of the process list.
        exported = self.export("alice")
        _, out, _ = run("team", "join", "-", "--from", exported, "--state",
                        self.path("alice-laptop"), "--json", stdin=invitation["code"] + "\n")
        joined = json.loads(out)
        self.assertEqual((joined["kind"], joined["userId"]), ("device", ""))
        self.assertTrue(os.path.exists(self.path("alice-laptop.request.json")))
        admitted = self.admit_and_sync("alice", "alice-laptop", joined["request"])
        self.assertEqual((admitted["kind"], admitted["userId"]), ("device", "alice"))
        for side in ("alice", "alice-laptop"):
            devices = self.team("devices", state=side)["devices"]
            self.assertEqual(sorted(d["deviceId"] for d in devices),
                             sorted([founded["device"], joined["device"]]))
            self.assertEqual([d["deviceId"] for d in devices if d["self"]],
                             [founded["device"] if side == "alice" else joined["device"]])
        self.assertIn("admitted a new device of alice",
                      [link["text"] for link in self.log("alice")][-1])
        # The laptop signs as alice; then alice removes the laptop, which then cannot sign.
        self.team("role", "add", "alice", "ops", state="alice-laptop")
        self.sync("alice-laptop", "alice")
        self.assertEqual(self.members("alice")["alice"]["roles"], ["admin", "ops"])
        self.team("device", "remove", joined["device"], state="alice")
        self.assertEqual(self.members("alice")["alice"]["devices"], [founded["device"]])
        self.sync("alice", "alice-laptop")
        err = self.refused("role", "add", "alice", "x", state="alice-laptop")
        self.assertIn("not a current device of a member of this team any more", err)
        # A device invitation allows one use only.
        err = self.refused("invite", "--device", "--max-uses", "3", state="alice", code=2)
        self.assertIn("--max-uses", err)

    # --- removal ----------------------------------------------------------------------------

    def test_remove_and_leave_and_a_removed_members_later_link_is_invalid(self):
        self.found()
        # One invitation for two members (--max-uses 2).
        invitation = self.invite("alice", "--max-uses", "2")
        for user in ("bob", "carol"):
            joined = self.join("alice", user, invitation["code"], "--user", user)
            self.admit_and_sync("alice", user, joined["request"])
        self.assertEqual(sorted(self.members("alice")), ["alice", "bob", "carol"])
        self.assertEqual(self.team("invite", state="alice")["maxUses"], 1)

        # bob leaves; alice imports it.
        left = self.team("leave", state="bob")
        self.assertEqual(left["action"], "removeMember")
        self.sync("bob", "alice")
        self.assertEqual(sorted(self.members("alice")), ["alice", "carol"])
        self.assertEqual(self.team("members", state="alice")["removed"], ["bob"])
        self.assertIn("bob left the team", [link["text"] for link in self.log("alice")])

        # alice removes carol while carol, who has not heard of it, signs a link.
        self.sync("alice", "carol")
        self.team("remove", "carol", state="alice")
        self.team("invite", "--device", state="carol")  # valid as far as carol knows
        self.assertEqual(self.sync("carol", "alice")["dropped"], [])
        removal = [link for link in self.log("alice") if link["text"] == "alice removed carol"]
        self.assertEqual(len(removal), 1)
        self.assertTrue(removal[0]["valid"])
        carols = [link for link in self.log("alice")
                  if link["author"] == "carol" and link["action"] == "inviteDevice"]
        self.assertEqual(len(carols), 1)
        self.assertFalse(carols[0]["valid"])
        self.assertIn("concurrent removal", carols[0]["reason"])
        _, out, _ = run("team", "log", "--state", self.path("alice"))
        self.assertRegex(out, r"carol invited a new device of theirs .* — INVALID: killed by a "
                              r"concurrent removal")
        self.assertEqual(sorted(self.members("alice")), ["alice"])
        # Once carol has the removal, she cannot sign at all; nothing is appended.
        self.sync("alice", "carol")
        before = self.links_size("carol")
        self.refused("invite", "--device", state="carol")
        self.assertEqual(self.links_size("carol"), before)
        # Nobody removes a non-member, or the founder.
        self.assertIn("not a current member", self.refused("remove", "zed", state="alice"))
        self.assertIn("refused, nothing appended", self.refused("leave", state="alice"))

    # --- roles, access, servers -------------------------------------------------------------

    def test_roles_document_access_and_servers(self):
        self.found()
        self.add_member("alice", "bob")
        self.team("role", "add", "bob", "editor", state="alice")
        self.assertEqual(self.members("alice")["bob"]["roles"], ["editor"])
        self.assertEqual(self.team("access", "set", "*", "everyone", "read",
                                   state="alice")["action"], "setDocumentAccess")
        self.team("access", "set", "*", "role:editor", "write", state="alice")
        # Levels are §9's: a role's entry beats everyone's; being an admin changes nothing.
        self.assertEqual(self.team("access", "show", state="alice")["members"],
                         {"alice": "read", "bob": "write"})
        self.team("role", "remove", "bob", "editor", state="alice")
        self.assertEqual(self.members("alice")["bob"]["roles"], [])
        self.assertEqual(self.team("access", "show", state="alice")["members"],
                         {"alice": "read", "bob": "read"})
        self.team("access", "set", "*", "member:bob", "none", state="alice")
        self.assertEqual(self.team("access", "show", "*", state="alice")["members"]["bob"], "none")
        # A server, by the key `keygen` prints.
        _, key, _ = run("keygen", "--out", self.path("server.key"))
        key = key.strip()
        self.team("server", "add", key, state="alice")
        self.assertEqual(self.team("members", state="alice")["servers"], [key])
        self.assertEqual(self.team("access", "show", state="alice")["servers"], {key: "read"})
        self.team("access", "set", "*", f"server:{key}", "none", state="alice")
        self.assertEqual(self.team("access", "show", state="alice")["servers"], {key: "none"})
        texts = [link["text"] for link in self.log("alice")]
        self.assertIn("alice gave bob the role editor", texts)
        self.assertIn("alice took the role editor from bob", texts)
        self.assertIn("alice set access to * for role:editor to write", texts)
        self.assertIn(f"alice added server {key[:8]}", texts)
        self.team("server", "remove", key, state="alice")
        self.assertEqual(self.team("members", state="alice")["servers"], [])
        # One document's entry overrides "*" for it alone.
        doc = document_id(self.rng)
        self.team("access", "set", doc, "everyone", "none", state="alice")
        self.team("access", "set", doc, "member:alice", "write", state="alice")
        self.assertEqual(self.team("access", "show", doc, state="alice")["members"],
                         {"alice": "write", "bob": "none"})
        self.assertEqual(self.team("access", "show", state="alice")["members"]["bob"], "none")
        self.assertIn(f"alice set access to {doc} for everyone to none",
                      [link["text"] for link in self.log("alice")])
        # bob may not do admin things: refused, with the reason, nothing appended.
        self.sync("alice", "bob")
        before = self.links_size("bob")
        err = self.refused("role", "add", "bob", "editor", state="bob")
        self.assertIn("refused, nothing appended", err)
        self.assertEqual(self.links_size("bob"), before)
        # The deviceSeq reserved for the refused link is used by bob's next one, which is valid
        # where it lands: no gap, no twin.
        self.team("invite", "--device", state="bob")
        self.assertEqual(self.sync("bob", "alice")["dropped"], [])
        self.assertEqual(self.team("verify", state="alice")["invalid"], 0)
        self.assertEqual(self.log("alice")[-1]["deviceSeq"], 1)

    # --- log and verify ---------------------------------------------------------------------

    def test_log_and_verify_in_text_and_json(self):
        founded = self.found(team_name="Ünïcode team")
        joined = self.add_member("alice", "bob")
        _, out, _ = run("team", "log", "--state", self.path("alice"))
        lines = out.splitlines()
        self.assertEqual(len(lines), 3, out)
        self.assertRegex(lines[0], r'^1\. [0-9a-f]{8}  alice founded the team "Ünïcode team" '
                                   r'\(device [0-9a-f]{8}\) — valid$')
        self.assertRegex(lines[1], r"^2\. [0-9a-f]{8}  alice invited a new member \(invitation "
                                   r"[0-9a-f]{8}, 1 use, never expires\) — valid$")
        self.assertRegex(lines[2], r"^3\. [0-9a-f]{8}  alice admitted bob \(device "
                                   + joined["device"][:8] + r"\) through invitation [0-9a-f]{8} "
                                   r"— valid$")
        links = self.log("bob")
        self.assertEqual([(link["action"], link["author"], link["deviceSeq"]) for link in links],
                         [("root", "alice", 1), ("inviteMember", "alice", 2),
                          ("admitMember", "alice", 3)])
        self.assertEqual(links[0]["hash"], founded["team"])
        summary = self.team("verify", state="bob")
        self.assertEqual({k: summary[k] for k in ("links", "valid", "invalid", "members",
                                                  "devices")},
                         {"links": 3, "valid": 3, "invalid": 0, "members": 2, "devices": 2})
        self.assertGreaterEqual(summary["passes"], 1)
        _, out, _ = run("team", "verify", "--state", self.path("alice"))
        self.assertRegex(out, r'^team "Ünïcode team" [0-9a-f]{64}: 3 links \(3 valid, 0 '
                              r'invalid\), 2 members, 2 devices')
        # A damaged links file: verify exits 1 and says where.
        with open(os.path.join(self.path("bob"), "links"), "r+b") as f:
            f.seek(20)
            byte = f.read(1)
            f.seek(20)
            f.write(bytes([byte[0] ^ 0xFF]))
        err = self.refused("verify", state="bob")
        self.assertIn("is damaged", err)
        self.assertIn("offset", err)

    # --- refusals ---------------------------------------------------------------------------

    def test_bad_arguments_exit_2_with_one_line(self):
        self.found()
        alice = self.path("alice")
        cases = [
            ["team"],
            ["team", "frobnicate"],
            ["team", "role", "add", "bob", "Editor!", "--state", alice],       # role syntax
            ["team", "role", "remove", "bob", "", "--state", alice],
            ["team", "access", "set", "portcullis:nope", "everyone", "read", "--state", alice],
            ["team", "access", "set", "*", "role:Bad Role", "read", "--state", alice],
            ["team", "access", "set", "*", "friends", "read", "--state", alice],
            ["team", "access", "set", "*", "everyone", "admin", "--state", alice],
            ["team", "access", "set", "*", "server:xyz", "read", "--state", alice],
            ["team", "invite", "--expires", "soon", "--state", alice],        # bad duration
            ["team", "invite", "--expires", "0d", "--state", alice],
            ["team", "invite", "--max-uses", "-1", "--state", alice],
            ["team", "members", "--state", self.path("missing")],             # no state dir
            ["team", "log"],                                                  # ./team-state
            ["team", "device", "remove", "abcd", "--state", alice],           # bad hex
            ["team", "server", "add", "zz" * 32, "--state", alice],
            ["team", "init", "--name", "t", "--user", "x", "--recovery-key", "12",
             "--state", self.path("new")],
            ["team", "init", "--name", "t", "--user", "", "--state", self.path("new")],
            ["team", "init", "--name", "t", "--state", self.path("new")],    # no --user
            ["team", "join", "not-a-code", "--from", "x", "--state", self.path("new")],
            ["team", "remove", "--state", alice],                             # no USER
            ["team", "members", "--log-level", "loud", "--state", alice],
        ]
        for args in cases:
            p = subprocess.run([EXE, *args], capture_output=True, text=True, timeout=30,
                               cwd=self.dir)
            self.assertEqual(p.returncode, 2, f"{args}: {p.stderr}")
            self.assertEqual(p.stdout, "", args)
            self.assertEqual(p.stderr.count("\n"), 1, f"{args}: {p.stderr}")
            self.assertTrue(p.stderr.startswith("portcullis: "), p.stderr)
        self.assertFalse(os.path.exists(self.path("new")))

    def test_a_non_admins_invitation_is_refused_and_nothing_appended(self):
        self.found()
        self.add_member("alice", "bob")
        before = self.links_size("bob")
        err = self.refused("invite", state="bob")
        self.assertIn("bob is not an admin", err)
        self.assertEqual(self.links_size("bob"), before)
        # The next link bob signs reuses nothing wrongly: it is valid where it lands.
        self.team("invite", "--device", state="bob")
        self.sync("bob", "alice")
        self.assertEqual(self.team("verify", state="alice")["invalid"], 0)

    def test_an_expired_invitation_is_refused_at_admit(self):
        self.found()
        invitation = self.invite("alice", "--expires", "1s")
        self.assertGreater(invitation["expiresAt"], 0)
        joined = self.join("alice", "bob", invitation["code"], "--user", "bob")
        time.sleep(max(0.0, invitation["expiresAt"] / 1000 - time.time()) + 0.1)
        before = self.links_size("alice")
        err = self.refused("admit", joined["request"], state="alice")
        self.assertIn("expired", err)
        self.assertEqual(self.links_size("alice"), before)

    def test_a_wrong_code_is_refused_at_join_without_making_the_directory(self):
        self.found()
        self.found("other", team_name="other")
        code = self.invite("alice")["code"]
        prefix, seed = code.split("-")
        wrong = prefix + "-" + "".join(self.rng.choice(BASE58) for _ in range(16))
        exported = self.export("alice")
        for bad, expected in ((wrong, "matches no open invitation"),
                              (self.invite("other")["code"], "prefix names another team")):
            rc, out, err = run("team", "join", bad, "--user", "bob", "--from", exported,
                               "--state", self.path("bob"), check=False)
            self.assertEqual(rc, 1, err)
            self.assertEqual(err.count("\n"), 1, err)
            self.assertIn(expected, err)
            self.assertNotIn(bad.split("-")[1], err)
            self.assertFalse(os.path.exists(self.path("bob")))
            self.assertFalse(os.path.exists(self.path("bob.request.json")))
        # A userId that is already taken is refused before anything is made.
        rc, _, err = run("team", "join", code, "--user", "alice", "--from", exported,
                         "--state", self.path("bob"), check=False)
        self.assertEqual(rc, 1, err)
        self.assertFalse(os.path.exists(self.path("bob")))
        # And a state directory that exists is never replaced.
        os.makedirs(self.path("full"))
        with open(os.path.join(self.path("full"), "x"), "w") as f:
            f.write("x")
        rc, _, err = run("team", "join", code, "--user", "bob", "--from", exported,
                         "--state", self.path("full"), check=False)
        self.assertEqual(rc, 1, err)
        self.assertIn("not an empty directory", err)

    def test_a_refused_port_fails_join_and_push_at_once_with_the_os_error(self):
        self.found()
        code = self.invite("alice")["code"]
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            address = "127.0.0.1:%d" % probe.getsockname()[1]
        start = time.monotonic()
        rc, _, err = run("team", "join", code, "--user", "bob", "--connect", address,
                         "--timeout", "20", "--state", self.path("bob"), check=False)
        self.assertEqual(rc, 1, err)
        self.assertLess(time.monotonic() - start, 10, "it waited for --timeout")
        self.assertEqual(err, f"portcullis: cannot connect to {address}: Connection refused\n")
        self.assertFalse(os.path.exists(self.path("bob")))
        # A link pushed to the same port is signed and kept, and the error says so.
        before = self.links_size("alice")
        start = time.monotonic()
        rc, _, err = run("team", "role", "add", "alice", "ops", "--connect", address,
                         "--timeout", "20", "--state", self.path("alice"), check=False)
        self.assertEqual(rc, 1, err)
        self.assertLess(time.monotonic() - start, 10, "it waited for --timeout")
        self.assertIn("kept here", err)
        self.assertIn(f"cannot connect to {address}: Connection refused", err)
        self.assertGreater(self.links_size("alice"), before)

    def test_a_tampered_request_is_refused_at_admit(self):
        self.found()
        code = self.invite("alice")["code"]
        joined = self.join("alice", "bob", code, "--user", "bob")
        with open(joined["request"]) as f:
            request = json.load(f)
        before = self.links_size("alice")
        for field, value in (("userId", "mallory"),
                             # The last byte flipped (a fixed "00" is no change for 1 key in 256).
                             ("encKey", request["encKey"][:-2]
                              + f"{int(request['encKey'][-2:], 16) ^ 0xFF:02x}"),
                             ("deviceId", self.found("eve")["device"])):
            tampered = dict(request, **{field: value})
            path = self.path(f"tampered-{field}.json")
            with open(path, "w") as f:
                json.dump(tampered, f)
            err = self.refused("admit", path, state="alice")
            self.assertIn("signatures do not verify", err, field)
        with open(self.path("garbage.json"), "w") as f:
            f.write("{not json")
        self.assertIn("not an admission request",
                      self.refused("admit", self.path("garbage.json"), state="alice"))
        self.assertEqual(self.links_size("alice"), before)
        # The untouched request still works.
        self.team("admit", joined["request"], state="alice")

    def test_import_of_a_file_with_a_bad_record_is_refused(self):
        self.found()
        self.add_member("alice", "bob")
        self.team("role", "add", "bob", "editor", state="alice")
        exported = self.export("alice")
        with open(exported, "rb") as f:
            data = bytearray(f.read())
        data[-30] ^= 0x01  # inside the last record's payload: its checksum no longer matches
        bad = self.path("bad.links")
        with open(bad, "wb") as f:
            f.write(data)
        before = self.links_size("bob")
        err = self.refused("import", bad, state="bob")
        self.assertIn("refused, nothing imported", err)
        self.assertIn("offset", err)
        self.assertEqual(self.links_size("bob"), before)
        with open(self.path("cut.links"), "wb") as f:
            f.write(bytes(data[:-5]))
        self.refused("import", self.path("cut.links"), state="bob")
        # Another team's export is not this team's.
        self.found("other")
        self.refused("import", self.export("other"), state="bob")
        # Export never overwrites.
        self.assertIn("refusing to overwrite", self.refused("export", exported, state="alice"))
        # The good file imports.
        self.assertEqual(self.team("import", exported, state="bob")["stored"], 1)

    def test_help_everywhere(self):
        for args in (["team", "--help"], ["team", "init", "--help"], ["team", "invite", "--help"],
                     ["team", "join", "--help"], ["team", "admit", "--help"],
                     ["team", "remove", "--help"], ["team", "leave", "--help"],
                     ["team", "device", "remove", "--help"], ["team", "role", "add", "--help"],
                     ["team", "role", "remove", "--help"], ["team", "access", "set", "--help"],
                     ["team", "server", "add", "--help"], ["team", "members", "--help"],
                     ["team", "devices", "--help"], ["team", "log", "--help"],
                     ["team", "verify", "--help"], ["team", "export", "--help"],
                     ["team", "import", "--help"]):
            code, out, _ = run(*args, check=False)
            self.assertEqual(code, 0, args)
            self.assertIn("--", out)


if __name__ == "__main__":
    print(f"seed {SEED} (set PORTCULLIS_TEST_SEED to repeat)", file=sys.stderr)
    unittest.main(verbosity=2)
