import gnupg


def test_keypair_encrypts_to_its_public_half(pgp_keypair, gnupg_home):
    gpg = gnupg.GPG(gnupghome=str(gnupg_home))
    assert gpg.import_keys(pgp_keypair.public_armored).count == 1
    enc = gpg.encrypt("hello", pgp_keypair.fingerprint, always_trust=True, armor=True)
    assert enc.ok, enc.status
    assert "BEGIN PGP MESSAGE" in str(enc)
