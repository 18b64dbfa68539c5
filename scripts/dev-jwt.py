#!/usr/bin/python3
"""Development and test identity tokens (never for production): an RSA key pair with its JWKS, and RS256 JWTs signed with
the openssl command line (Python's standard library has no RSA).

  dev-jwt.py keygen DIR KID            DIR/KID.pem and DIR/KID.jwks.json
  dev-jwt.py mint DIR KID CLAIMS_JSON  a token; "exp" defaults to now + 600 and "iat" to
                                   now; an "exp" or "iat" given as "+N"/"-N" is relative
"""
import base64
import json
import subprocess
import sys
import time


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def keygen(d: str, kid: str) -> None:
    pem = f"{d}/{kid}.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", pem], check=True, capture_output=True)
    text = subprocess.run(["openssl", "rsa", "-in", pem, "-noout", "-modulus"], check=True,
                          capture_output=True, text=True).stdout
    n = bytes.fromhex(text.strip().split("=", 1)[1])
    jwk = {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64url(n), "e": b64url(b"\x01\x00\x01")}
    with open(f"{d}/{kid}.jwks.json", "w") as f:
        json.dump({"keys": [jwk]}, f)


def mint(d: str, kid: str, claims: dict) -> str:
    now = int(time.time())
    for k, default in (("exp", "+600"), ("iat", "+0")):
        v = claims.get(k, default)
        if isinstance(v, str) and v[:1] in "+-":
            claims[k] = now + int(v)
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", f"{d}/{kid}.pem"], input=signing_input.encode(),
                         check=True, capture_output=True).stdout
    return signing_input + "." + b64url(sig)


if __name__ == "__main__":
    if sys.argv[1] == "keygen":
        keygen(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "mint":
        print(mint(sys.argv[2], sys.argv[3], json.loads(sys.argv[4])))
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
