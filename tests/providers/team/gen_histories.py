#!/usr/bin/env python3
"""Random team histories for the differential test (differential_test.cc), with the results of
the team spec's reference model.

    gen_histories.py --model PATH --seed S --count N [--start K] [--max-links M]

prints a JSON array of N vectors in the format of the spec's vectors.json (name, links with
id/by/prev/seq/noauto/act, expect), history K .. K+N-1 of seed S. `expect` is what model.py
(imported from PATH, never copied) says: members, admins, removed, devices, servers, invalid,
dropped, unbacked (ids) and passes. History i is a function of (S, i) only, so
`--seed S --start i --count 1` reproduces one history.

A history is a founder's team grown by random members acting on fresh or stale views: members,
admins and devices added, invitations issued, used (sometimes over-used concurrently) and
revoked, removals, leaves, demotions and role changes by several admins concurrently (`prev`
picked among earlier links, not only the heads), twins (two links of one device at one
deviceSeq), links by removed members, outsiders and the recovery key, access settings and
servers. Every link is buildable (model.build); many are invalid or dropped on purpose.

The model orders concurrent links by their hash, and its hashes are not the real ones, so a
result that depends on that tie-break cannot be compared with an implementation. The
generator gives no two admissions one depth (seniority is (depth, hash) of the admission) and
re-evaluates each history with the hash order reversed and with two other hash functions; a
history whose result changes is replaced by another attempt (counted on stderr).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from collections import defaultdict
import random
from pathlib import Path

USERS = ["bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "ken", "leo",
         "mia", "nina", "oscar", "peggy", "quinn", "rose", "sam", "tina", "uma", "vic", "walt"]
FOUNDER = "alice"
ROLES = ["admin", "ops", "dev"]
DOCS = ["doc1", "doc2", "*"]
LEVELS = ["none", "read", "write"]
MAX_ATTEMPTS = 30


def load_model(path: str):
    spec = importlib.util.spec_from_file_location("team_model", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"gen_histories: cannot load the model from {path}")
    model = importlib.util.module_from_spec(spec)
    sys.modules["team_model"] = model         # dataclasses look the module up by name
    spec.loader.exec_module(model)
    return model


class History:
    """One history under construction, with the generator's naive (linear, optimistic) view of
    the team, used only to pick plausible actions; the model decides what is valid."""

    def __init__(self, model, rng: random.Random, length: int):
        self.model = model
        self.rng = rng
        self.length = length
        self.links = []                          # symbolic links, file order
        self.past = {}                           # id -> set of ancestor ids (effective prev)
        self.depth = {}
        self.heads = set()
        self.own = defaultdict(list)             # device -> [(seq, id)]
        self.dev_user = {}                       # device -> userId (as introduced)
        self.intro = {}                          # device -> introducing link id
        self.users = {}                          # userId -> view {"devs", "roles", "live"}
        self.gone_devs = set()
        self.counter = defaultdict(int)
        self.invites = []                        # {"id", "key", "kind", "user", "dev", "max"}
        self.servers = []
        self.inst_depths = set()                 # depths of admissions (root, addMember, admit)
        self.tainted = set()                     # links the model drops (checks 1-5)
        self.ev = None                           # the model's storage, without evaluation
        self.recovery = "rk" if rng.random() < 0.5 else None
        root = {"type": "root", "team": "acme", "device": "a1"}
        if self.recovery:
            root["recovery"] = self.recovery
        self.counter["a"] = 1
        self._append({"id": "r", "by": f"{FOUNDER}/a1", "act": root}, "a1", 1, set(), 0)
        self.inst_depths.add(0)
        self.users[FOUNDER] = {"devs": ["a1"], "roles": {"admin"}, "live": True}
        self.dev_user["a1"] = FOUNDER
        self.intro["a1"] = "r"
        self._store()

    # --- names ---------------------------------------------------------------------------------
    def fresh(self, prefix: str) -> str:
        self.counter[prefix] += 1
        return f"{prefix}{self.counter[prefix]}"

    def fresh_dev(self, user: str) -> str:
        return self.fresh(user[0])

    def live_users(self):
        return [u for u, v in self.users.items() if v["live"]]

    def admins(self):
        return [u for u in self.live_users() if "admin" in self.users[u]["roles"]]

    def devs_of(self, user):
        return [d for d in self.users[user]["devs"] if d not in self.gone_devs]

    def all_devs(self):
        return list(self.dev_user)

    # --- links ---------------------------------------------------------------------------------
    def _append(self, link, dev, seq, eff, depth):
        lid = link["id"]
        self.links.append(link)
        self.past[lid] = set().union(*(self.past[p] | {p} for p in eff)) if eff else set()
        self.depth[lid] = depth
        self.heads -= eff
        self.heads.add(lid)
        self.own[dev].append((seq, lid))

    def next_seq(self, dev):
        return 1 + max((q for q, _ in self.own[dev]), default=0)

    def own_at(self, dev, seq):
        return [i for q, i in self.own[dev] if q == seq]

    def _store(self):
        """Offers the last link to the model's storage (checks 1-5, check 5' from pass 1 of its
        past): a link it drops is tainted, and nothing plausible is built on it."""
        built, ids = self.model.build({"name": "gen", "links": self.links})
        if self.ev is None:
            self.ev = self.model.Evaluation([], ids[None], evaluate=False)
        self.hash_of = {i: h for h, i in ids.items() if h is not None}
        x = built[-1]
        self.ev.ingest([x])
        if x["hash"] not in self.ev.stored:
            self.tainted.add(self.links[-1]["id"])

    def pick_prev(self, dev, stale: bool, avoid=frozenset()):
        """Parents for a link by `dev`: some heads (a fresh view) or some earlier links (a stale
        one), never a link that has seen one of `avoid` (the new link is concurrent with them)."""
        rng = self.rng
        ok = [l["id"] for l in self.links if l["id"] not in self.tainted or rng.random() < 0.02]
        if avoid:
            ok = [i for i in ok if i not in avoid and not self.past[i] & avoid] or ["r"]
            stale = True
        if stale and len(ok) > 1:
            k = rng.randrange(1, len(ok) + 1)
            prev = set(rng.sample(ok[:k], min(k, rng.randint(1, 2))))
        else:
            heads = sorted(h for h in self.heads if h not in self.tainted) or ok[-1:]
            prev = set(rng.sample(heads, min(len(heads), rng.randint(1, 3))))
        intro = self.intro.get(dev)                # a stale peer still saw its own introduction
        if intro and not self.own[dev] and rng.random() < 0.95:
            if not any(intro == p or intro in self.past[p] for p in prev):
                prev.add(intro)
        return prev

    def add(self, user, dev, act, *, need=(), invite=None, admission=False, twin=False,
            stale=None, avoid=None):
        """Appends a link by user/dev; `need`: ids its past must hold; `avoid`: links it should
        be concurrent with (default: sometimes one of the last few links). Returns the id."""
        rng = self.rng
        if avoid is None:
            avoid = set()
            if rng.random() < 0.25 and len(self.links) > 2:
                avoid.add(rng.choice(self.links[-6:])["id"])
        avoid = set(avoid) - {"r"}
        lid = f"l{len(self.links)}"
        link = {"id": lid, "by": f"{user}/{dev}"}
        if stale is None:
            stale = rng.random() < 0.35
        seq = self.next_seq(dev)
        noauto = False
        later = set()                              # a twin's own links at or after its seq
        prev = self.pick_prev(dev, stale, avoid) | set(need)
        if twin and seq > (2 if dev == "a1" else 1):   # a second link at an earlier deviceSeq
            s = rng.randint(2 if dev == "a1" else 1, seq - 1)
            later = {i for q, i in self.own[dev] if q >= s}
            fine = [p for p in prev if p not in later and not (self.past[p] & later)]
            below = self.own_at(dev, s - 1)
            if (fine or below) and all(n in fine for n in need):
                prev = set(fine)
                if below:
                    prev.add(rng.choice(below))
                if prev:
                    seq, noauto = s, True
                    link["seq"] = s
                    link["noauto"] = True
            if not noauto:
                prev = self.pick_prev(dev, stale, avoid) | set(need)
        eff = set(prev)
        if seq > 1 and not noauto:
            mine = self.own_at(dev, seq - 1)
            if not set(mine) & prev:
                if len(mine) == 1:
                    eff.add(mine[0])               # implied: model.build adds it
                else:
                    pick = rng.choice(mine)        # twins at seq - 1: say which
                    prev.add(pick)
                    eff.add(pick)
        if not eff:                                # only a device's first link may get here
            eff = prev = {"r"}
        depth = 1 + max(self.depth[p] for p in eff)
        if not noauto:
            later = set()
        if admission and depth in self.inst_depths:   # no two admissions at one depth: seniority
            at = [i for i, d in self.depth.items()     # is (depth, hash) of the admission
                  if d >= depth and d + 1 not in self.inst_depths and i not in self.tainted
                  and i not in later and not self.past[i] & later]
            if at:
                low = min(self.depth[i] for i in at)
                q = rng.choice([i for i in at if self.depth[i] == low])
                prev.add(q)
                eff.add(q)
                depth = low + 1
        if admission:
            self.inst_depths.add(depth)
        if rng.random() < 0.5:                     # sometimes only the links not already implied
            mine = {i for _, i in self.own[dev]}
            prev -= {p for p in prev if p not in mine and any(p in self.past[o] for o in prev)}
        if prev:
            link["prev"] = sorted(prev, key=lambda i: (len(i), i))
        if invite is not None:
            link["invite"] = invite
        link["act"] = act
        self._append(link, dev, seq, eff, depth)
        self._store()
        return lid

    # --- actors --------------------------------------------------------------------------------
    def actor(self, admin=False, user=None):
        """(user, device) of a plausible author, sometimes not."""
        rng = self.rng
        r = rng.random()
        if r < 0.03:                               # an outsider: never introduced (dropped)
            dev = self.fresh("z")
            return "mallory", dev
        if r < 0.05 and self.dev_user:             # a device under another userId (dropped)
            return rng.choice(USERS[:4] + [FOUNDER]), rng.choice(self.all_devs())
        if r < 0.13 and self.gone_devs:            # a removed member or device acting
            dev = rng.choice(sorted(self.gone_devs))
            return self.dev_user[dev], dev
        if user is None:
            pool = self.admins() if admin and rng.random() < 0.85 else self.live_users()
            if rng.random() < 0.9:                 # mostly users that can still sign
                pool = [u for u in pool if any(self.usable(d) for d in self.devs_of(u))]
            user = rng.choice(pool or [FOUNDER])
        devs = self.devs_of(user) or self.users[user]["devs"]
        if not devs:                               # its introduction introduced nothing new
            user, devs = FOUNDER, self.devs_of(FOUNDER) or ["a1"]
        fine = [d for d in devs if self.usable(d)]
        return user, rng.choice(fine or devs)

    def usable(self, dev):
        """The device's links can be stored: a link that introduced it is valid in pass 1 of its
        own past (check 5'), and no link of its chain was dropped."""
        if any(i in self.tainted for _, i in self.own[dev]):
            return False
        if dev == self.recovery:
            return True
        i = self.intro.get(dev)
        return i is not None and i not in self.tainted and self.ev.pass1(self.hash_of[i])

    # --- actions -------------------------------------------------------------------------------
    def step(self):
        rng = self.rng
        kinds = [("addMember", 14), ("inviteMember", 6), ("admitMember", 8), ("inviteDevice", 6),
                 ("admitDevice", 7), ("revokeInvitation", 3), ("addDevice", 7),
                 ("removeDevice", 8), ("removeMember", 9), ("addMemberRole", 5),
                 ("removeMemberRole", 7), ("setDocumentAccess", 4), ("addServer", 3),
                 ("removeServer", 2), ("recovery", 2)]
        kind = rng.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        twin = rng.random() < 0.07
        return getattr(self, "do_" + kind)(twin)

    def _new_user(self):
        rng = self.rng
        fresh = [u for u in USERS if u not in self.users]
        gone = [u for u, v in self.users.items() if not v["live"]]
        if gone and rng.random() < 0.2:
            return rng.choice(gone)                # a re-add: a new instance
        if fresh and rng.random() < 0.9:
            return fresh[0]
        return rng.choice(sorted(self.users))      # live: invalid; removed: a re-add

    def _introduce(self, user, devs, lid):
        v = self.users.setdefault(user, {"devs": [], "roles": set(), "live": True})
        v["live"] = True
        for d in devs:
            if d not in self.dev_user:
                v["devs"].append(d)
                self.dev_user[d] = user
                self.intro[d] = lid

    def do_addMember(self, twin):
        rng = self.rng
        user, dev = self.actor(admin=True)
        new = self._new_user()
        if new in self.users and self.users[new]["live"] and rng.random() < 0.7:
            return None
        devs = [self.fresh_dev(new) for _ in range(rng.choice([1, 1, 1, 2, 2, 3]))]
        if rng.random() < 0.06 and self.dev_user:
            devs[0] = rng.choice(self.all_devs())  # not fresh
        act = {"type": "addMember", "user": new, "devices": sorted(set(devs))}
        r = rng.random()
        if r < 0.3:
            act["roles"] = ["admin"]
        elif r < 0.38:
            act["roles"] = ["ops"]
        elif r < 0.43:
            act["roles"] = ["admin", "ops"]
        lid = self.add(user, dev, act, admission=True, twin=twin)
        self._introduce(new, act["devices"], lid)
        self.users[new]["roles"] = set(act.get("roles", []))
        return lid

    def do_inviteMember(self, twin):
        user, dev = self.actor(admin=True)
        key = self.fresh("i")
        act = {"type": "inviteMember", "key": key, "maxUses": self.rng.choice([0, 1, 1, 2, 2])}
        lid = self.add(user, dev, act, twin=twin)
        self.invites.append({"id": lid, "key": key, "kind": "inviteMember", "user": user,
                             "dev": dev, "max": act["maxUses"]})
        return lid

    def do_inviteDevice(self, twin):
        user, dev = self.actor()
        key = self.fresh("j")
        lid = self.add(user, dev, {"type": "inviteDevice", "key": key}, twin=twin)
        self.invites.append({"id": lid, "key": key, "kind": "inviteDevice", "user": user,
                             "dev": dev, "max": 1})
        return lid

    def _invite(self, kind):
        invs = [i for i in self.invites if i["kind"] == kind and i["id"] not in self.tainted]
        return self.rng.choice(invs) if invs else None

    def do_admitMember(self, twin):
        rng = self.rng
        inv = self._invite("inviteMember")
        if inv is None:
            return None
        user, dev = self.actor()
        new = self._new_user()
        ndev = self.fresh_dev(new)
        if rng.random() < 0.05 and self.dev_user:
            ndev = rng.choice(self.all_devs())
        act = {"type": "admitMember", "key": inv["key"], "user": new, "device": ndev}
        need = [inv["id"]] if rng.random() < 0.97 else []
        # over-use: admissions that have not seen each other (stale views of the invitation)
        stale = rng.random() < 0.5
        avoid = None
        if rng.random() < 0.5:
            avoid = {l["id"] for l in self.links if l.get("invite") == inv["id"]}
        lid = self.add(user, dev, act, need=need, invite=inv["id"], admission=True,
                           twin=twin, stale=stale, avoid=avoid)
        self._introduce(new, [ndev], lid)
        self.users[new]["roles"] = set()
        return lid

    def do_admitDevice(self, twin):
        rng = self.rng
        inv = self._invite("inviteDevice")
        if inv is None:
            return None
        owner = inv["user"]
        poster = owner if rng.random() < 0.5 and owner in self.users else None
        user, dev = self.actor(user=poster)
        ndev = self.fresh_dev(owner)
        if rng.random() < 0.05 and self.dev_user:
            ndev = rng.choice(self.all_devs())
        act = {"type": "admitDevice", "key": inv["key"], "device": ndev}
        need = [inv["id"]] if rng.random() < 0.97 else []
        lid = self.add(user, dev, act, need=need, invite=inv["id"], twin=twin)
        if owner in self.users:
            self._introduce(owner, [ndev], lid)
        return lid

    def do_revokeInvitation(self, twin):
        if not self.invites:
            return None
        inv = self.rng.choice(self.invites)
        if self.rng.random() < 0.6 and inv["user"] in self.users:
            user, dev = self.actor(user=inv["user"])
        else:
            user, dev = self.actor(admin=True)
        act = {"type": "revokeInvitation", "key": inv["key"]}
        return self.add(user, dev, act, need=[inv["id"]], invite=inv["id"], twin=twin)

    def do_addDevice(self, twin):
        rng = self.rng
        user, dev = self.actor()
        target = user if rng.random() < 0.9 else rng.choice(sorted(self.users))
        ndev = self.fresh_dev(target)
        if rng.random() < 0.05:
            ndev = rng.choice(self.all_devs())
        act = {"type": "addDevice", "user": target, "device": ndev}
        lid = self.add(user, dev, act, twin=twin)
        if target == user and target in self.users:
            self._introduce(target, [ndev], lid)
        return lid

    def do_removeDevice(self, twin):
        rng = self.rng
        r = rng.random()
        if r < 0.5:
            user, dev = self.actor()
            cands = self.devs_of(user) if user in self.users else []
        elif r < 0.9:
            user, dev = self.actor(admin=True)
            cands = [d for u in self.live_users() if u != user for d in self.devs_of(u)]
        else:
            user, dev = self.actor()
            cands = self.all_devs()
        if not cands:
            return None
        target = rng.choice(cands)
        lid = self.add(user, dev, {"type": "removeDevice", "device": target}, twin=twin)
        self.gone_devs.add(target)
        return lid

    def do_removeMember(self, twin):
        rng = self.rng
        r = rng.random()
        if r < 0.25:                               # a leave
            user, dev = self.actor()
            target = user
        else:
            user, dev = self.actor(admin=r < 0.85)
            others = [u for u in self.live_users() if u != user] or self.live_users()
            target = rng.choice(others)
        lid = self.add(user, dev, {"type": "removeMember", "user": target}, twin=twin)
        if target in self.users and target != FOUNDER and lid not in self.tainted:
            self.users[target]["live"] = False
            self.gone_devs |= set(self.users[target]["devs"])
        return lid

    def do_addMemberRole(self, twin):
        rng = self.rng
        user, dev = self.actor(admin=True)
        target = rng.choice(self.live_users())
        role = rng.choice(ROLES)
        lid = self.add(user, dev, {"type": "addMemberRole", "user": target, "role": role},
                           twin=twin)
        if target in self.users:
            self.users[target]["roles"].add(role)
        return lid

    def do_removeMemberRole(self, twin):
        rng = self.rng
        if rng.random() < 0.2:                     # dropping one's own role
            user, dev = self.actor()
            target = user
        else:
            user, dev = self.actor(admin=True)
            target = rng.choice(self.live_users())
        have = sorted(self.users[target]["roles"]) if target in self.users else []
        role = rng.choice(have) if have and rng.random() < 0.8 else rng.choice(ROLES)
        lid = self.add(user, dev, {"type": "removeMemberRole", "user": target,
                                            "role": role}, twin=twin)
        if target in self.users:
            self.users[target]["roles"].discard(role)
        return lid

    def do_setDocumentAccess(self, twin):
        rng = self.rng
        user, dev = self.actor(admin=True)
        r = rng.random()
        if r < 0.3:
            principal = "everyone"
        elif r < 0.55:
            principal = {"role": rng.choice(ROLES)}
        elif r < 0.85:
            principal = {"member": rng.choice(sorted(self.users))}
        else:
            principal = {"server": rng.choice(self.servers or ["s1"])}
        act = {"type": "setDocumentAccess", "doc": rng.choice(DOCS), "principal": principal,
               "level": rng.choice(LEVELS)}
        return self.add(user, dev, act, twin=twin)

    def do_addServer(self, twin):
        rng = self.rng
        user, dev = self.actor(admin=True)
        r = rng.random()
        if r < 0.1 and self.dev_user:
            server = rng.choice(self.all_devs())   # a device's key: not fresh
        elif r < 0.2 and self.servers:
            server = rng.choice(self.servers)      # again (concurrently: K5b)
        else:
            server = self.fresh("s")
        lid = self.add(user, dev, {"type": "addServer", "server": server}, twin=twin)
        if server not in self.servers:
            self.servers.append(server)
        return lid

    def do_removeServer(self, twin):
        if not self.servers:
            return None
        user, dev = self.actor(admin=True)
        return self.add(user, dev, {"type": "removeServer",
                                             "server": self.rng.choice(self.servers)}, twin=twin)

    def do_recovery(self, twin):
        rng = self.rng
        if not self.recovery:
            return None
        if rng.random() < 0.5:
            ndev = self.fresh_dev(FOUNDER)
            act = {"type": "addDevice", "user": FOUNDER, "device": ndev}
            lid = self.add(FOUNDER, self.recovery, act, twin=twin)
            self._introduce(FOUNDER, [ndev], lid)
            return lid
        target = rng.choice(self.users[FOUNDER]["devs"])
        lid = self.add(FOUNDER, self.recovery, {"type": "removeDevice", "device": target},
                       twin=twin)
        self.gone_devs.add(target)
        return lid

    def generate(self):
        rng = self.rng
        for _ in range(rng.randint(1, 3)):         # the founder's first members
            if len(self.links) >= self.length:
                break
            self.do_addMember(False)
        for _ in range(self.length * 20):
            if len(self.links) >= self.length:
                break
            self.step()
        return self.links


def evaluate(model, vector):
    """The model's outcome of a vector: the fields differential_test.cc compares, plus passes."""
    links, ids = model.build(vector)
    res = model.resolve(links, ids[None])
    got = model.outcome({"expect": {"unbacked": []}}, res, ids)
    got["passes"] = res["passes"]
    return got


def tie_free(model, vector, expect) -> bool:
    """The model's result does not depend on its hash tie-break (T order, seniority, room): the
    same with the hash order reversed and with two other hash functions."""
    original = model.link_hash
    flip = str.maketrans("0123456789abcdef", "fedcba9876543210")
    hashes = [lambda body, sig: original(body, sig).translate(flip)]
    hashes += [lambda body, sig, salt=salt: model.sha({"salt": salt, "body": body, "sig": sig})
               for salt in ("portcullis/diff/1", "portcullis/diff/2")]
    try:
        for h in hashes:
            model.link_hash = h
            got = evaluate(model, vector)
            if any(got[k] != expect[k] for k in got if k != "passes"):
                return False
    finally:
        model.link_hash = original
    return True


def history(model, seed: int, index: int, max_links: int, stats):
    for attempt in range(MAX_ATTEMPTS):
        tag = f"{seed}:{index}" + (f":{attempt}" if attempt else "")
        rng = random.Random(tag)
        h = History(model, rng, rng.randint(5, max_links))
        name = f"diff-{seed}-{index}" + (f"-a{attempt}" if attempt else "")
        vector = {"name": name,
                  "note": f"gen_histories.py --seed {seed} --start {index} --count 1",
                  "links": h.generate()}
        expect = evaluate(model, vector)
        if tie_free(model, vector, expect):
            vector["expect"] = expect
            return vector
        stats["tie"] += 1
    raise SystemExit(f"gen_histories: history {seed}:{index}: every attempt depends on the "
                     f"model's hash tie-break")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="the team spec's model.py")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--start", type=int, default=0, help="index of the first history")
    ap.add_argument("--max-links", type=int, default=40)
    args = ap.parse_args()
    if not Path(args.model).is_file():
        raise SystemExit(f"gen_histories: no model at {args.model}")
    if args.max_links < 5 or args.count < 0:
        raise SystemExit("gen_histories: --max-links must be at least 5, --count at least 0")
    model = load_model(args.model)
    stats = defaultdict(int)
    t0 = time.monotonic()
    out = [history(model, args.seed, args.start + i, args.max_links, stats)
           for i in range(args.count)]
    json.dump(out, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    print(f"gen_histories: {len(out)} histories, {sum(len(v['links']) for v in out)} links, "
          f"{stats['tie']} replaced (tie-break dependent), {time.monotonic() - t0:.1f}s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
