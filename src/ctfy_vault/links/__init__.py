"""Signed, expiring, read-only links to single objects, capped at one hour.

S3 and S3-compatibles get SigV4 query signatures, Azure Blob gets SAS tokens, and local targets get
HMAC links to the application's own download endpoint, checked with `verify_link`. `check_not_public`
verifies the other half of the promise: without a signature, nothing is served.
"""

from ctfy_vault.links._hmac import LinkSigner, VerifiedLink, verify_link
from ctfy_vault.links._policy import (
    CLOCK_SKEW,
    DEFAULT_TTL,
    MAX_TTL,
    LinkPolicy,
    content_disposition,
)
from ctfy_vault.links._presign import SignedLink, presign
from ctfy_vault.links._public import PublicAccessCheck, check_not_public

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_TTL",
    "MAX_TTL",
    "LinkPolicy",
    "LinkSigner",
    "PublicAccessCheck",
    "SignedLink",
    "VerifiedLink",
    "check_not_public",
    "content_disposition",
    "presign",
    "verify_link",
]
