#!/usr/bin/env python3
"""An independent verifier of a Via event log, written from docs/event-log-format.md.

It shares no code with `via`: it opens HOME/log/events.db with sqlite3, decodes every
record's canonical Cap'n Proto bytes with its own decoder, checks the canonical form,
seq continuity, the stored hashes, the chain links, the command-id column, every stored
Merkle node, the RFC 6962 root and every stored checkpoint's size, root and (format 3)
link to the note before it, and verifies Ed25519 signatures with the OpenSSL 3 command
line: every note's in a format-2 log; in a format-3 log the newest note's, which the
links bind every older note into (all of them with --all-signatures; when the log is
found damaged, the notes before the damage are checked one by one so that the first bad
seq is the one a check of every signature names). It then compares what it decoded with what `via` prints:
`audit log --json` (type names and every field), `audit key`, `audit checkpoint`,
and the proofs of `audit prove --json`, which it verifies with RFC 9162's algorithms.

Usage: independent_verify.py [--via PATH | --no-via] [--all-signatures] HOME

Exit status: 0 when everything agrees; 1 when the log fails verification (the first
bad seq is named, as `via audit verify` names it) or `via` disagrees; 2 for a usage
or environment problem. Python 3 standard library only (plus the `openssl` binary).
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import sqlite3
import struct
import subprocess
import sys
import tempfile
import urllib.parse

APPLICATION_ID = 0x5649414C  # "VIAL"
FORMAT_VERSIONS = (2, 3)  # 3: every note links to the note before it
LINK_PREFIX = "prev-note-sha256 "
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
MAX_NESTING = 16  # what via's reader allows


class VerifyError(Exception):
    """The log is not valid. `seq` is the first bad seq (0: not tied to a record)."""

    def __init__(self, seq, reason, message):
        super().__init__(message)
        self.seq = seq
        self.reason = reason
        self.message = message


class NoteError(ValueError):
    """A checkpoint note is refused; `reason` is via's reason code for it."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


class Disagreement(Exception):
    """The log verified here, but `via` printed something else."""


class DecodeError(Exception):
    pass


# ---------------------------------------------------------------------------
# Cap'n Proto: a single-segment message reader and a schema-free canonical check.

class Message:
    def __init__(self, data):
        if len(data) == 0 or len(data) % 8 != 0:
            raise DecodeError("length %d is not a positive multiple of 8" % len(data))
        self.data = bytes(data)
        self.words = len(data) // 8

    def u32(self, byte_offset):
        return struct.unpack_from("<I", self.data, byte_offset)[0]

    def word(self, index):
        return self.data[index * 8:index * 8 + 8]

    def pointer(self, index):
        """Parses the pointer word at `index`: None for null, else a tuple
        ('struct', target, data_words, ptr_count) or ('list', target, elem_size, count)."""
        if index < 0 or index >= self.words:
            raise DecodeError("pointer at word %d is outside the message" % index)
        lo = self.u32(index * 8)
        hi = self.u32(index * 8 + 4)
        if lo == 0 and hi == 0:
            return None
        kind = lo & 3
        offset = (lo if lo < 0x80000000 else lo - 0x100000000) >> 2  # signed 30 bits
        target = index + 1 + offset
        if kind == 0:
            return ("struct", target, hi & 0xFFFF, hi >> 16, offset)
        if kind == 1:
            return ("list", target, hi & 7, hi >> 3, offset)
        raise DecodeError("far or capability pointer at word %d (single segment expected)" % index)

    def in_bounds(self, start, words):
        return 0 <= start and words >= 0 and start + words <= self.words


# Bits per element for list element-size codes 0..5 (6 = pointer, 7 = composite).
LIST_ELEMENT_BITS = [0, 1, 8, 16, 32, 64]


def check_canonical(msg):
    """The canonical-form rules of capnp::canonicalize, checked without a schema:
    single segment; root pointer at word 0; every object placed exactly where a
    preorder walk expects it; no trailing zero word in any data section and no
    trailing null pointer in any pointer section; zero-sized structs point at
    their own pointer (offset -1); list padding is zero; nothing after the tree."""
    head = [1]  # next word a canonical encoder would write

    def walk(ptr_index, depth):
        if depth > MAX_NESTING:
            raise DecodeError("nesting deeper than %d" % MAX_NESTING)
        p = msg.pointer(ptr_index)
        if p is None:
            return
        if p[0] == "struct":
            _, target, dw, pc, offset = p
            if dw == 0 and pc == 0:
                if offset != -1:
                    raise DecodeError("zero-sized struct at word %d does not use offset -1" % ptr_index)
                return
            if target != head[0]:
                raise DecodeError("struct at word %d is not where preorder puts it (word %d)" % (target, head[0]))
            if not msg.in_bounds(target, dw + pc):
                raise DecodeError("struct at word %d runs past the end" % target)
            if dw > 0 and msg.word(target + dw - 1) == bytes(8):
                raise DecodeError("struct at word %d: trailing zero data word not truncated" % target)
            if pc > 0 and msg.word(target + dw + pc - 1) == bytes(8):
                raise DecodeError("struct at word %d: trailing null pointer not truncated" % target)
            head[0] = target + dw + pc
            for i in range(pc):
                walk(target + dw + i, depth + 1)
            return
        _, target, es, count, _offset = p
        if target != head[0]:
            raise DecodeError("list at word %d is not where preorder puts it (word %d)" % (target, head[0]))
        if es == 7:
            if not msg.in_bounds(target, 1 + count):
                raise DecodeError("struct list at word %d runs past the end" % target)
            tag = msg.pointer(target)
            if tag is None:
                n, dw, pc = 0, 0, 0
            else:
                if tag[0] != "struct":
                    raise DecodeError("struct list tag at word %d is not a struct tag" % target)
                lo = msg.u32(target * 8)
                n, dw, pc = lo >> 2, tag[2], tag[3]
            if n * (dw + pc) != count:
                raise DecodeError("struct list at word %d: %d words declared, %d used" % (target, count, n * (dw + pc)))
            first = target + 1
            head[0] = first + count
            if dw + pc == 0:
                return
            data_ok = dw == 0
            ptr_ok = pc == 0
            for e in range(n):
                base = first + e * (dw + pc)
                if dw > 0 and msg.word(base + dw - 1) != bytes(8):
                    data_ok = True
                if pc > 0 and msg.word(base + dw + pc - 1) != bytes(8):
                    ptr_ok = True
            if not (data_ok and ptr_ok):
                raise DecodeError("struct list at word %d: element size not truncated" % target)
            for e in range(n):
                base = first + e * (dw + pc)
                for i in range(pc):
                    walk(base + dw + i, depth + 1)
            return
        if es == 6:
            if not msg.in_bounds(target, count):
                raise DecodeError("pointer list at word %d runs past the end" % target)
            head[0] = target + count
            for i in range(count):
                walk(target + i, depth + 1)
            return
        bits = count * LIST_ELEMENT_BITS[es]
        words = (bits + 63) // 64
        if not msg.in_bounds(target, words):
            raise DecodeError("list at word %d runs past the end" % target)
        start = target * 8
        end = start + words * 8
        full_bytes = bits // 8
        if bits % 8:
            if msg.data[start + full_bytes] >> (bits % 8):
                raise DecodeError("list at word %d: padding bits are not zero" % target)
            full_bytes += 1
        if any(msg.data[start + full_bytes:end]):
            raise DecodeError("list at word %d: padding bytes are not zero" % target)
        head[0] = target + words

    walk(0, 0)
    if head[0] != msg.words:
        raise DecodeError("%d words after the object tree" % (msg.words - head[0]))


class Struct:
    """A struct's data and pointer sections. Fields past either section read as
    their default (0, false, null), which is what section truncation relies on."""

    def __init__(self, msg, data_word, dw, ptr_word, pc, depth=0):
        self.msg, self.data_word, self.dw, self.ptr_word, self.pc = msg, data_word, dw, ptr_word, pc
        self.depth = depth

    @staticmethod
    def from_pointer(msg, ptr_index, depth=0):
        p = msg.pointer(ptr_index)
        if p is None:
            return Struct(msg, 0, 0, 0, 0, depth)
        if p[0] != "struct":
            raise DecodeError("expected a struct pointer at word %d" % ptr_index)
        _, target, dw, pc, _ = p
        if not msg.in_bounds(target, dw + pc) and dw + pc > 0:
            raise DecodeError("struct at word %d runs past the end" % target)
        return Struct(msg, target, dw, target + dw, pc, depth)

    def uint(self, byte_offset, size):
        if byte_offset + size > self.dw * 8:
            return 0
        return int.from_bytes(self.msg.data[self.data_word * 8 + byte_offset:
                                            self.data_word * 8 + byte_offset + size], "little")

    def sint(self, byte_offset, size):
        v = self.uint(byte_offset, size)
        return v - (1 << (8 * size)) if v >> (8 * size - 1) else v

    def bool(self, bit):
        if bit >= self.dw * 64:
            return False
        return bool(self.msg.data[self.data_word * 8 + bit // 8] >> (bit % 8) & 1)

    def _ptr(self, index):
        return None if index >= self.pc else self.ptr_word + index

    def _bytes(self, index, what):
        at = self._ptr(index)
        p = None if at is None else self.msg.pointer(at)
        if p is None:
            return None
        if p[0] != "list" or p[2] != 2:
            raise DecodeError("%s: expected a list of bytes" % what)
        _, target, _, count, _ = p
        if not self.msg.in_bounds(target, (count + 7) // 8):
            raise DecodeError("%s: runs past the end" % what)
        return self.msg.data[target * 8:target * 8 + count]

    def data(self, index):
        b = self._bytes(index, "Data")
        return b"" if b is None else b

    def text(self, index):
        b = self._bytes(index, "Text")
        if b is None:
            return ""
        if len(b) == 0 or b[-1] != 0:
            raise DecodeError("Text is not NUL-terminated")
        return b[:-1].decode("utf-8", errors="replace")

    def struct(self, index):
        at = self._ptr(index)
        if at is None:
            return Struct(self.msg, 0, 0, 0, 0, self.depth + 1)
        return Struct.from_pointer(self.msg, at, self.depth + 1)

    def struct_list(self, index):
        at = self._ptr(index)
        p = None if at is None else self.msg.pointer(at)
        if p is None:
            return []
        if p[0] != "list" or p[2] != 7:
            raise DecodeError("expected a struct list")
        _, target, _, words, _ = p
        if not self.msg.in_bounds(target, 1 + words):
            raise DecodeError("struct list runs past the end")
        lo = self.msg.u32(target * 8)
        hi = self.msg.u32(target * 8 + 4)
        n, dw, pc = lo >> 2, hi & 0xFFFF, hi >> 16
        if n * (dw + pc) > words:
            raise DecodeError("struct list elements run past the list")
        if n > 4 * self.msg.words + 64:
            # Amplification guard (zero-sized elements take no space): via's reader
            # reads at most 4 x (record words) + 64 words, counting such elements
            # as one word each.
            raise DecodeError("struct list of %d elements in a %d-word record" % (n, self.msg.words))
        return [Struct(self.msg, target + 1 + e * (dw + pc), dw, target + 1 + e * (dw + pc) + dw, pc,
                       self.depth + 1) for e in range(n)]


# ---------------------------------------------------------------------------
# The schema (eventstore/record.capnp), as layouts: docs/event-log-format.md, "Events".
# Field kinds: text/data/structs take a pointer index; u32/u64/i64 a data byte
# offset; bool a data bit offset.

BINDING_CLAIM = [("binding", "text", 0), ("addonId", "text", 1)]

EVENTS = {
    0: ("LogInitialized", [("logId", "text", 0), ("origin", "text", 1),
                           ("checkpointVerifierKey", "text", 2), ("workloadVerifierKey", "text", 3)]),
    1: ("AddonCreated", [("addonId", "text", 0), ("name", "text", 1), ("provider", "text", 2),
                         ("app", "text", 3), ("binding", "text", 4)]),
    2: ("StorageProvisioned", [("addonId", "text", 0)]),
    3: ("ProvisioningFailed", [("addonId", "text", 0), ("reason", "text", 1), ("dataPresent", "bool", 0)]),
    4: ("AddonRenamed", [("addonId", "text", 0), ("oldName", "text", 1), ("newName", "text", 2)]),
    5: ("BindingAttached", [("app", "text", 0), ("binding", "text", 1), ("addonId", "text", 2)]),
    6: ("BindingDetached", [("app", "text", 0), ("binding", "text", 1), ("addonId", "text", 2)]),
    7: ("BindingSnapshotted", [("app", "text", 0), ("releaseId", "text", 1), ("claims", "claims", 2)]),
    8: ("GenerationRotated", [("addonId", "text", 0), ("generation", "u32", 0),
                              ("fingerprint", "data", 1), ("salt", "data", 2)]),
    9: ("GenerationRevoked", [("addonId", "text", 0), ("generation", "u32", 0)]),
    10: ("SnapshotRequested", [("addonId", "text", 0), ("snapshotId", "text", 1), ("label", "text", 2)]),
    11: ("SnapshotTaken", [("addonId", "text", 0), ("snapshotId", "text", 1), ("sha256", "data", 2),
                           ("bytes", "u64", 0), ("pageCount", "u64", 8)]),
    12: ("SnapshotFailed", [("addonId", "text", 0), ("snapshotId", "text", 1), ("reason", "text", 2)]),
    13: ("RestoreRequested", [("addonId", "text", 0), ("snapshotId", "text", 1),
                              ("safetySnapshotId", "text", 2)]),
    14: ("SnapshotRestored", [("addonId", "text", 0), ("snapshotId", "text", 1),
                              ("safetySnapshotId", "text", 2)]),
    15: ("RestoreFailed", [("addonId", "text", 0), ("snapshotId", "text", 1), ("reason", "text", 2)]),
    16: ("StorageRepaired", [("addonId", "text", 0), ("action", "text", 1), ("snapshotId", "text", 2),
                             ("detail", "text", 3)]),
    17: ("AddonDestroyed", [("addonId", "text", 0), ("tombstoneName", "text", 1)]),
    18: ("WorkloadTokenIssued", [("app", "text", 0), ("releaseId", "text", 1), ("tokenId", "text", 2),
                                 ("expiresAtMs", "i64", 0), ("issuedAtMs", "i64", 8)]),
    19: ("GenerationDelivered", [("addonId", "text", 0), ("generation", "u32", 0), ("app", "text", 1),
                                 ("releaseId", "text", 2)]),
    20: ("RepairRequested", [("addonId", "text", 0), ("action", "text", 1)]),
    21: ("StorageChecked", [("addonId", "text", 0), ("ok", "bool", 0), ("check", "text", 1),
                            ("detail", "text", 2)]),
    22: ("SnapshotVerified", [("addonId", "text", 0), ("snapshotId", "text", 1), ("ok", "bool", 0),
                              ("check", "text", 2), ("detail", "text", 3)]),
    23: ("SnapshotDeleted", [("addonId", "text", 0), ("snapshotId", "text", 1), ("reason", "text", 2)]),
    24: ("SnapshotPolicySet", [("addonId", "text", 0), ("keepLast", "u32", 0), ("keepDaily", "u32", 4),
                               ("keepWeekly", "u32", 8), ("everySeconds", "u32", 12)]),
    25: ("ProviderConfigured", [("provider", "text", 0), ("host", "text", 1), ("port", "u32", 0),
                                ("user", "text", 2), ("database", "text", 3),
                                ("secretFingerprint", "data", 4)]),
    26: ("NodeAnnounced", [("node", "text", 0), ("publicUrl", "text", 1)]),
    27: ("AddonPlaced", [("addonId", "text", 0), ("node", "text", 1)]),
    28: ("OwnerWorkRequested", [("addonId", "text", 0), ("work", "text", 1), ("argument", "text", 2)]),
    29: ("OwnerWorkFinished", [("addonId", "text", 0), ("request", "text", 1), ("code", "text", 2),
                              ("status", "text", 3), ("message", "text", 4),
                              ("remediation", "text", 5)]),
}


def read_fields(s, fields):
    out = {}
    for name, kind, at in fields:
        if kind == "text":
            out[name] = s.text(at)
        elif kind == "data":
            out[name] = s.data(at)
        elif kind == "u32":
            out[name] = s.uint(at, 4)
        elif kind == "u64":
            out[name] = s.uint(at, 8)
        elif kind == "i64":
            out[name] = s.sint(at, 8)
        elif kind == "bool":
            out[name] = s.bool(at)
        elif kind == "claims":
            out[name] = [read_fields(e, BINDING_CLAIM) for e in s.struct_list(at)]
        else:
            raise AssertionError(kind)
    return out


def decode_record(data):
    """Decodes canonical record bytes into a dict; raises DecodeError."""
    msg = Message(data)
    check_canonical(msg)
    root = Struct.from_pointer(msg, 0)
    record = {
        "seq": root.uint(0, 8),
        "recordedAtMs": root.sint(8, 8),
        "prevHash": root.data(0),
        "actor": root.text(1),
        "commandId": root.text(2),
    }
    tag = root.uint(16, 2)
    if tag not in EVENTS:
        raise DecodeError("event discriminant %d is not in docs/event-log-format.md" % tag)
    name, fields = EVENTS[tag]
    record["type"] = name
    record["event"] = read_fields(root.struct(3), fields)
    return record


# ---------------------------------------------------------------------------
# Hashes, RFC 6962 tree, RFC 9162 proof verification.

def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(b):
    return sha256(b"\x00" + b)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


class Tree:
    """All perfect subtrees, level by level: levels[l][i] covers leaves
    [i * 2^l, (i + 1) * 2^l). Appending a leaf returns the (level, index, hash)
    of every perfect subtree the append completes, leaf first."""

    def __init__(self):
        self.levels = []

    def size(self):
        return len(self.levels[0]) if self.levels else 0

    def append(self, h):
        completed = []
        level = 0
        while True:
            if len(self.levels) <= level:
                self.levels.append([])
            self.levels[level].append(h)
            index = len(self.levels[level]) - 1
            completed.append((level, index, h))
            if index % 2 == 0:
                break
            h = node_hash(self.levels[level][index - 1], h)
            level += 1
        return completed

    def root(self, size):
        """MTH of the first `size` leaves, folded from its perfect pieces."""
        if size == 0:
            return sha256(b"")
        pieces = []
        begin = 0
        while begin < size:
            width = 1 << ((size - begin).bit_length() - 1)
            level = width.bit_length() - 1
            pieces.append(self.levels[level][begin >> level])
            begin += width
        acc = pieces[-1]
        for h in reversed(pieces[:-1]):
            acc = node_hash(h, acc)
        return acc


def verify_inclusion(index, size, leaf, proof, root):
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(size1, size2, root1, root2, proof):
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0 or size1 > size2 or not proof:
        return False
    if size1 & (size1 - 1) == 0:
        proof = [root1] + list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


# ---------------------------------------------------------------------------
# Signed notes (C2SP signed-note + tlog-checkpoint), Ed25519 via `openssl`.

def parse_verifier_key(text):
    parts = text.split("+", 2)  # the name holds no '+', the base64 may
    if len(parts) != 3:
        raise ValueError("verifier key is not <name>+<key id>+<key>")
    name, hex_id, b64 = parts
    key = base64.b64decode(b64, validate=True)
    if len(key) != 33 or key[0] != 0x01:
        raise ValueError("verifier key is not an Ed25519 (type 0x01) key")
    pub = key[1:]
    key_id = sha256(name.encode() + b"\x0a\x01" + pub)[:4]
    if hex_id != key_id.hex():
        raise ValueError("key id %s does not match the key (expected %s)" % (hex_id, key_id.hex()))
    return name, key_id, pub


def b64decode_strict(text):
    """Standard base64 with padding, one spelling per byte string (RFC 4648 section 4)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def parse_note(note):
    """Splits a signed note (C2SP signed-note) into its text (the body) and its
    signature lines (name, key id, signature); raises NoteError."""
    if not note.endswith("\n"):
        raise NoteError("checkpoint_malformed", "note does not end in a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteError("checkpoint_malformed", "control character in the note")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("checkpoint_malformed", "no blank line before the signature lines")
    body = note[:split + 1]
    signatures = []
    for line in note[split + 2:].split("\n")[:-1]:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("checkpoint_malformed", "signature line does not start with an em dash and a space")
        name, _, b64 = line[len(SIGNATURE_PREFIX):].partition(" ")
        blob = b64decode_strict(b64)
        if blob is None or len(blob) < 5 or not name:
            raise NoteError("checkpoint_malformed", "bad signature line")
        signatures.append((name, blob[:4], blob[4:]))
    if not signatures:
        raise NoteError("checkpoint_malformed", "no signature line")
    return body, signatures


def parse_body(body):
    """(origin, size, root, link) of a tlog-checkpoint body; link is None without one."""
    lines = body.split("\n")[:-1]
    if len(lines) < 3 or any(line == "" for line in lines):
        raise NoteError("checkpoint_malformed", "body needs origin, size and root lines")
    origin, size_text, root_b64 = lines[0], lines[1], lines[2]
    if not size_text.isdigit() or not size_text.isascii() or (len(size_text) > 1 and size_text[0] == "0"):
        raise NoteError("checkpoint_malformed", "bad tree size %r" % size_text)
    root = b64decode_strict(root_b64)
    if root is None or len(root) != 32:
        raise NoteError("checkpoint_malformed", "root is not 32 bytes of base64")
    link = None
    if len(lines) > 3 and lines[3].startswith(LINK_PREFIX):
        link = b64decode_strict(lines[3][len(LINK_PREFIX):])
        if link is None or len(link) != 32:
            raise NoteError("checkpoint_malformed", "the link is not 32 bytes of base64")
    return origin, int(size_text), root, link


def ed25519_verify(pub, message, signature, workdir):
    der = ED25519_SPKI_PREFIX + pub
    pem = "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" % base64.b64encode(der).decode()
    paths = {n: os.path.join(workdir, n) for n in ("key.pem", "msg", "sig")}
    with open(paths["key.pem"], "w") as f:
        f.write(pem)
    with open(paths["msg"], "wb") as f:
        f.write(message)
    with open(paths["sig"], "wb") as f:
        f.write(signature)
    try:
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", paths["key.pem"],
                            "-rawin", "-in", paths["msg"], "-sigfile", paths["sig"]],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise SystemExit("error: the openssl command is not installed")
    return r.returncode == 0


def open_note(note, key, workdir, check_signature):
    """Check 9 (a) to (c) of section 9: returns (size, root, link), or raises NoteError.
    Without check_signature, (b) is left out (a note bound by the links, 8.2)."""
    name, key_id, pub = key
    body, signatures = parse_note(note)
    if check_signature:
        mine = [s for s in signatures if s[0] == name and s[1] == key_id]
        if not mine:
            raise NoteError("checkpoint_bad_signature", "no signature by %s+%s" % (name, key_id.hex()))
        for _, _, sig in mine:
            if len(sig) != 64 or not ed25519_verify(pub, body.encode(), sig, workdir):
                raise NoteError("checkpoint_bad_signature", "invalid signature by %s+%s" % (name, key_id.hex()))
    origin, size, root, link = parse_body(body)
    if origin != name:
        raise NoteError("checkpoint_bad_signature", "origin %r is not the key name %r" % (origin, name))
    return size, root, link


# ---------------------------------------------------------------------------
# The log.

def open_db(path):
    if not os.path.exists(path):
        raise SystemExit("error: no event log at %s" % path)
    try:
        db = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(os.path.abspath(path)), uri=True)
        db.execute("SELECT 1 FROM records LIMIT 1").fetchall()
        return db
    except sqlite3.Error:
        return sqlite3.connect(path)  # a WAL file without its -shm needs write access


def verify_log(db, workdir, all_signatures):
    """The checks of `via audit verify`, in its order. Returns a summary dict."""
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if app_id != APPLICATION_ID:
        raise VerifyError(0, "not_a_log", "PRAGMA application_id is %#x, not 0x5649414c" % app_id)
    if version not in FORMAT_VERSIONS:
        raise VerifyError(0, "log_version", "PRAGMA user_version is %d, expected one of %s" % (version, FORMAT_VERSIONS))
    linked = version >= 3
    # Format 2: every note's own signature. Format 3: the newest note's; the links
    # bind the others into it (section 8.2).
    every_signature = all_signatures or not linked

    newest = db.execute("SELECT max(seq) FROM records").fetchone()[0] or 0
    state = {"key": None, "notes": []}  # notes seen so far: (seq, text)
    try:
        return verify_rows(db, workdir, every_signature, linked, newest, state)
    except VerifyError as e:
        if every_signature or state["key"] is None:
            raise
        # Section 9, step 2: the reference pass checks every note's signature, so
        # the first note before the failing row whose signature fails comes first.
        for seq, note in state["notes"]:
            if seq >= e.seq:
                break
            try:
                open_note(note, state["key"], workdir, True)
            except NoteError as bad:
                raise VerifyError(seq, bad.reason, "checkpoint of seq %d: %s" % (seq, bad))
        raise


def verify_rows(db, workdir, every_signature, linked, newest, state):
    tree = Tree()
    prev = bytes(32)
    prev_note = bytes(32)  # the link the next note must carry
    key = None
    records = []
    checkpoints = 0
    last_cp = 0
    newest_note = None
    verified_signatures = 0
    expected = 1
    for row_seq, data, stored_hash, stored_nodes, command_id, note in db.execute(
            "SELECT seq, record, hash, nodes, command_id, checkpoint FROM records ORDER BY seq"):
        if row_seq != expected:
            raise VerifyError(expected, "seq_gap", "record is missing (next stored seq is %d)" % row_seq)
        data = bytes(data)
        h = sha256(data)
        if bytes(stored_hash) != h:
            raise VerifyError(row_seq, "hash_mismatch", "record bytes do not match their stored hash")
        try:
            rec = decode_record(data)
        except DecodeError as e:
            raise VerifyError(row_seq, "record_malformed", "record does not decode: %s" % e)
        if rec["seq"] != row_seq:
            raise VerifyError(row_seq, "seq_mismatch", "row holds the record of seq %d" % rec["seq"])
        if rec["prevHash"] != prev:
            raise VerifyError(row_seq, "chain_broken", "prevHash is not the hash of the record before it")
        # The command id sits on the last record of its append, the one with the note.
        expected_command = rec["commandId"] if note is not None and rec["commandId"] != "" else None
        if command_id != expected_command:
            raise VerifyError(row_seq, "command_id_mismatch", "command_id column does not match the record")
        if row_seq == 1:
            if rec["type"] != "LogInitialized":
                raise VerifyError(1, "log_not_initialized", "seq 1 is not LogInitialized")
            try:
                key = parse_verifier_key(rec["event"]["checkpointVerifierKey"])
            except ValueError as e:
                raise VerifyError(1, "bad_verifier_key", str(e))
            if key[0] != rec["event"]["origin"]:
                raise VerifyError(1, "bad_verifier_key", "key name is not the log origin")
            state["key"] = key
        # The row's nodes: every perfect subtree its leaf completes, leaf first.
        completed = b"".join(node for _, _, node in tree.append(leaf_hash(data)))
        stored_nodes = bytes(stored_nodes)
        if stored_nodes != completed:
            for level in range(len(completed) // 32):
                where = "Merkle node level %d index %d" % (level, (row_seq >> level) - 1)
                if len(stored_nodes) < 32 * (level + 1):
                    raise VerifyError(row_seq, "merkle_node_missing", where + " is missing")
                if stored_nodes[32 * level:32 * (level + 1)] != completed[32 * level:32 * (level + 1)]:
                    raise VerifyError(row_seq, "merkle_node_mismatch", where + " does not match the records")
            raise VerifyError(row_seq, "merkle_node_extra", "the row holds more Merkle nodes than its leaf completes")
        prev = h
        expected += 1
        size = tree.size()
        if note is not None:
            check_signature = every_signature or row_seq == newest
            try:
                try:
                    signed_size, signed_root, link = open_note(note, key, workdir, check_signature)
                    if signed_size != size:
                        raise NoteError("checkpoint_mismatch",
                                        "checkpoint stored for size %d says size %d" % (size, signed_size))
                    if signed_root != tree.root(size):
                        raise NoteError("checkpoint_mismatch",
                                        "signed root at size %d does not match the records" % size)
                    if linked and link != prev_note:
                        raise NoteError("checkpoint_link_mismatch",
                                        "the link is not SHA-256 of the note before it")
                except NoteError as first:
                    if check_signature:
                        raise
                    # Check 9 (b) comes before (c) to (f): the note's own signature first.
                    open_note(note, key, workdir, True)
                    raise first
            except NoteError as e:
                raise VerifyError(row_seq, e.reason, "checkpoint of seq %d: %s" % (row_seq, e))
            if check_signature:
                verified_signatures += 1
            checkpoints += 1
            last_cp = size
            newest_note = note
            prev_note = sha256(note.encode())
            state["notes"].append((row_seq, note))
        records.append((rec, h, data))

    size = tree.size()
    if size == 0:
        raise VerifyError(1, "log_empty", "the log holds no records")
    if last_cp < size:
        raise VerifyError(last_cp + 1, "unsigned_records",
                          "records after size %d are covered by no signed checkpoint" % last_cp)
    return {"size": size, "root": tree.root(size), "tree": tree, "key": key, "records": records,
            "checkpoints": checkpoints, "signatures": verified_signatures,
            "newest_note": newest_note}


# ---------------------------------------------------------------------------
# Agreement with `via`.

def snake(name):
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def json_value(v):
    if isinstance(v, bytes):
        return base64.b64encode(v).decode()
    if isinstance(v, list):
        return [{snake(k): json_value(x) for k, x in e.items()} for e in v]
    return v


# docs/cli.md "JSON conventions": digests of content and secrets print as
# lowercase hex, times (`xAtMs`) as RFC 3339 under `x_at`, durations in
# seconds as milliseconds under `x_ms`; other bytes stay base64.
HEX_FIELDS = {"sha256", "fingerprint", "secretFingerprint"}


def rendered_field(name, value):
    """The key and value `via audit log --json` prints for an event field."""
    if name in HEX_FIELDS:
        return snake(name), value.hex()
    if name.endswith("AtMs"):
        # issuedAtMs is 0 in records written before it was recorded.
        return snake(name[:-2]), (None if name == "issuedAtMs" and value == 0 else rfc3339(value))
    if name.endswith("Seconds"):
        return snake(name[:-len("Seconds")]) + "_ms", value * 1000
    return snake(name), json_value(value)


def rfc3339(ms):
    t = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def run_via(via, home, *args):
    r = subprocess.run([via, "--home", home] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise Disagreement("`via %s` exited %d: %s" % (" ".join(args), r.returncode,
                                                       r.stderr.decode(errors="replace").strip()))
    return r.stdout.decode()


def b64(b):
    return base64.b64encode(b).decode()


def compare_with_via(via, home, summary):
    records = summary["records"]
    lines = [json.loads(line) for line in run_via(via, home, "--json", "audit", "log").splitlines() if line]
    if len(lines) != len(records):
        raise Disagreement("via audit log printed %d records, the log holds %d" % (len(lines), len(records)))
    compared_fields = 0
    for (rec, h, data), line in zip(records, lines):
        seq = rec["seq"]
        expect = {"seq": seq, "type": rec["type"], "actor": rec["actor"], "command_id": rec["commandId"],
                  "prev_hash": b64(rec["prevHash"]), "hash": b64(h), "record": b64(data)}
        if rec["recordedAtMs"] >= 0:
            expect["recorded_at"] = rfc3339(rec["recordedAtMs"])
        for name, value in rec["event"].items():
            key, rendered = rendered_field(name, value)
            expect[key] = rendered
        for k, v in expect.items():
            if line.get(k) != v:
                raise Disagreement("seq %d: field %s: decoded %r, via printed %r" % (seq, k, v, line.get(k)))
            compared_fields += 1
        extra = set(line) - set(expect) - {"recorded_at"}
        if extra:
            raise Disagreement("seq %d (%s): via prints fields this verifier does not decode: %s "
                               "(docs/event-log-format.md is out of date)" % (seq, rec["type"], sorted(extra)))

    key_text = records[0][0]["event"]["checkpointVerifierKey"]
    printed_key = run_via(via, home, "audit", "key").strip()
    if printed_key != key_text:
        raise Disagreement("via audit key printed %r, LogInitialized holds %r" % (printed_key, key_text))
    if run_via(via, home, "audit", "checkpoint") != summary["newest_note"]:
        raise Disagreement("via audit checkpoint differs from the newest stored note")

    size, tree = summary["size"], summary["tree"]
    seqs = range(1, size + 1) if size <= 64 else sorted({1, 2, size // 2, size - 1, size} - {0})
    for seq in seqs:
        p = json.loads(run_via(via, home, "--json", "audit", "prove", "--inclusion", str(seq)))
        proof = [base64.b64decode(x) for x in p["proof"]]
        if (p["leaf_index"] != seq - 1 or p["tree_size"] != size or
                base64.b64decode(p["leaf_hash"]) != tree.levels[0][seq - 1] or
                base64.b64decode(p["root"]) != summary["root"]):
            raise Disagreement("via audit prove --inclusion %d: header differs: %r" % (seq, p))
        if not verify_inclusion(seq - 1, size, tree.levels[0][seq - 1], proof, summary["root"]):
            raise Disagreement("via audit prove --inclusion %d: the proof does not verify" % seq)
    for old in seqs:
        p = json.loads(run_via(via, home, "--json", "audit", "prove", "--consistency", str(old)))
        proof = [base64.b64decode(x) for x in p["proof"]]
        root1, root2 = base64.b64decode(p["root1"]), base64.b64decode(p["root2"])
        if p["size1"] != old or p["size2"] != size or root1 != tree.root(old) or root2 != summary["root"]:
            raise Disagreement("via audit prove --consistency %d: header differs: %r" % (old, p))
        if not verify_consistency(old, size, root1, root2, proof):
            raise Disagreement("via audit prove --consistency %d: the proof does not verify" % old)
    return compared_fields, len(seqs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("home", help="the Via home directory (holds log/events.db)")
    ap.add_argument("--via", default=os.environ.get("VIA_BIN", "via"), help="the via binary to compare with")
    ap.add_argument("--no-via", action="store_true", help="only verify the log; do not run via")
    ap.add_argument("--all-signatures", action="store_true",
                    help="verify every stored checkpoint's signature (default: the newest)")
    args = ap.parse_args()

    db = open_db(os.path.join(args.home, "log", "events.db"))
    with tempfile.TemporaryDirectory(prefix="via-indep-") as workdir:
        try:
            db.execute("BEGIN")  # one snapshot for the whole pass
            summary = verify_log(db, workdir, args.all_signatures)
            db.execute("COMMIT")
        except VerifyError as e:
            print("FAILED: first bad seq %d: %s [%s]" % (e.seq, e.message, e.reason))
            return 1
        except sqlite3.Error as e:
            print("error: reading the log: %s" % e, file=sys.stderr)
            return 2
    types = {}
    for rec, _, _ in summary["records"]:
        types[rec["type"]] = types.get(rec["type"], 0) + 1
    print("independent verifier: %d records, seq 1..%d continuous, chain intact" % (summary["size"], summary["size"]))
    print("  Merkle root %s (RFC 6962), every stored node matches" % b64(summary["root"]))
    print("  %d checkpoints match the recomputed roots; %d Ed25519 signature(s) verified by openssl, key %s+%s"
          % (summary["checkpoints"], summary["signatures"], summary["key"][0], summary["key"][1].hex()))
    print("  event types: %s" % ", ".join("%s x%d" % kv for kv in sorted(types.items())))
    if args.no_via:
        return 0
    try:
        fields, proofs = compare_with_via(args.via, args.home, summary)
    except (Disagreement, FileNotFoundError) as e:
        print("DISAGREES with via: %s" % e)
        return 1
    print("  agrees with via: audit log --json (%d fields incl. every type name), audit key, "
          "audit checkpoint, %d inclusion and %d consistency proofs verified" % (fields, proofs, proofs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
