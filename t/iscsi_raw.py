"""iscsi_raw.py: a minimal iSCSI initiator over a raw socket, for tests
that need to do what real initiators do not (stay silent, reuse an ISID,
watch a NOP-In arrive).  Not a general client."""
import socket
import struct
import time


_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _k in range(8):
        _c = (_c >> 1) ^ (0x82F63B78 if _c & 1 else 0)
    _CRC_TABLE.append(_c)


def crc32c(data):
    """CRC32C as iSCSI digests use it (RFC 7143 Appendix A.4)."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


def digest(data):
    return struct.pack("<I", crc32c(data))


def pad4(b):
    return b + b"\0" * ((4 - len(b) % 4) % 4)


class Conn:
    def __init__(self, host, port, timeout=10):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.cmdsn = 1
        self.exp_statsn = 0
        self.itt = 1
        self.hd = self.dd = False   # digests in use (after login)

    def send(self, bhs, data=b"", bad_hd=False, bad_dd=False):
        assert len(bhs) == 48
        bhs = bytearray(bhs)
        bhs[5:8] = len(data).to_bytes(3, "big")
        out = bytes(bhs)
        if self.hd:
            d = bytearray(digest(out))
            if bad_hd:
                d[0] ^= 0xFF
            out += bytes(d)
        out += pad4(data)
        if self.dd and data:
            d = bytearray(digest(pad4(data)))
            if bad_dd:
                d[0] ^= 0xFF
            out += bytes(d)
        self.s.sendall(out)

    def recv_exact(self, n):
        b = b""
        while len(b) < n:
            c = self.s.recv(n - len(b))
            if not c:
                raise EOFError("connection closed")
            b += c
        return b

    def recv(self):
        bhs = self.recv_exact(48)
        ahs = bhs[4] * 4
        dsl = int.from_bytes(bhs[5:8], "big")
        if ahs:
            self.recv_exact(ahs)
        if self.hd:
            assert self.recv_exact(4) == digest(bhs), "bad header digest"
        padded = self.recv_exact(dsl + (4 - dsl % 4) % 4) if dsl else b""
        if self.dd and dsl:
            assert self.recv_exact(4) == digest(padded), "bad data digest"
        return bhs, padded[:dsl]

    def login(self, initiator, target, isid=b"\x80\x00\x00\x00\x00\x01",
              extra=b""):
        keys = (b"InitiatorName=" + initiator.encode() + b"\0" +
                b"TargetName=" + target.encode() + b"\0" +
                b"SessionType=Normal\0" + extra)
        bhs = bytearray(48)
        bhs[0] = 0x43
        bhs[1] = 0x80 | (1 << 2) | 3
        bhs[8:14] = isid
        struct.pack_into(">I", bhs, 16, self.itt)
        struct.pack_into(">I", bhs, 24, self.cmdsn)
        self.send(bhs, keys)
        r, data = self.recv()
        assert r[0] & 0x3f == 0x23, "not a login response"
        status = (r[36] << 8) | r[37]
        self.exp_statsn = struct.unpack_from(">I", r, 24)[0] + 1
        self.cmdsn = struct.unpack_from(">I", r, 28)[0]
        return status, data

    def nop_out(self, itt=0x1234, ttt=0xffffffff, immediate=True):
        bhs = bytearray(48)
        bhs[0] = 0x40 if immediate else 0x00
        bhs[1] = 0x80
        struct.pack_into(">III", bhs, 16, itt, ttt, self.cmdsn)
        struct.pack_into(">I", bhs, 28, self.exp_statsn)
        if not immediate:
            self.cmdsn += 1
        self.send(bhs)

    def scsi(self, cdb, read_len=0, write=b"", lun=0, itt=None):
        bhs = bytearray(48)
        bhs[0] = 0x01
        bhs[1] = 0x80 | (0x40 if read_len else 0) | (0x20 if write else 0) | 1
        struct.pack_into(">Q", bhs, 8, lun << 48)
        itt = itt if itt is not None else self.next_itt()
        struct.pack_into(">IIII", bhs, 16, itt,
                         read_len or len(write), self.cmdsn, self.exp_statsn)
        self.cmdsn += 1
        bhs[32:32 + len(cdb)] = cdb
        self.send(bhs, write)
        return itt

    def command(self, cdb, read_len=0, write=b"", lun=0):
        """Run a command to its end; unit attentions (POWER ON after a
        restart, a reset) are retried.  Returns (status, (key, asc, ascq)
        or None, data-in)."""
        for _ in range(8):
            self.scsi(cdb, read_len=read_len, write=write, lun=lun)
            data = b""
            while True:
                r, d = self.recv()
                op = r[0] & 0x3f
                if op == 0x25:
                    data += d
                    if r[1] & 0x01:
                        res = (r[3], None, data)
                        break
                elif op == 0x21:
                    s = d[2:] if d else b""
                    res = (r[3], (s[2] & 0x0f, s[12], s[13]) if s else None,
                           data)
                    break
            if not (res[0] == 2 and res[1] and res[1][0] == 6):
                return res
        raise AssertionError("unit attentions without end")

    def next_itt(self):
        self.itt += 1
        return self.itt

    def logout(self):
        bhs = bytearray(48)
        bhs[0] = 0x46
        bhs[1] = 0x80
        struct.pack_into(">III", bhs, 16, self.next_itt(), 0, self.cmdsn)
        self.send(bhs)
        return self.recv()

    def closed_within(self, secs):
        """True when the target closes the connection within secs."""
        self.s.settimeout(0.5)
        end = time.time() + secs
        while time.time() < end:
            try:
                if not self.s.recv(65536):
                    return True
            except socket.timeout:
                continue
            except OSError:
                return True
        return False
