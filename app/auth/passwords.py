"""Password rules: long enough, not the account's e-mail, not a well-known password.

The list is short on purpose (shipped, no download): it holds the passwords that top every
published leak ranking and that pass the length rule, plus local favourites. Length does
most of the work; the list catches what length alone lets through.
"""

from __future__ import annotations

MIN_LENGTH = 10
MAX_LENGTH = 128

COMMON_PASSWORDS = frozenset(
    [
        "1234567890",
        "0123456789",
        "12345678910",
        "123456789a",
        "1234567890a",
        "0987654321",
        "1111111111",
        "0000000000",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "qwertyuiop",
        "qwertyuiop1",
        "qwerty1234",
        "qwerty12345",
        "asdfghjkl1",
        "zxcvbnm123",
        "password12",
        "password123",
        "password1234",
        "password!",
        "passw0rd123",
        "p@ssw0rd123",
        "p@ssword123",
        "iloveyou12",
        "iloveyou123",
        "princess12",
        "sunshine12",
        "football12",
        "baseball12",
        "whatever12",
        "trustno1234",
        "abc1234567",
        "abcd123456",
        "abcdefghij",
        "aa12345678",
        "a123456789",
        "qazwsxedc123",
        "1qaz2wsx!@",
        "letmein123",
        "welcome123",
        "welcome1234",
        "admin12345",
        "admin123456",
        "administrator",
        "root123456",
        "changeme12",
        "changeme123",
        "secret1234",
        "monkey1234",
        "dragon1234",
        "master1234",
        "superman12",
        "batman1234",
        "woaini1314",
        "woaini520",
        "5201314520",
        "1314520520",
        "wo123456789",
        "aini1314520",
        "7758521521",
        "zhang123456",
        "wang123456",
        "li123456789",
        "qq123456789",
        "a5201314520",
        "11223344556",
        "1122334455",
        "88888888888",
        "6666666666",
        "9999999999",
        "5555555555",
        "1234512345",
        "1234554321",
        "1357924680",
        "2468013579",
    ]
)


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """Why ``password`` is refused, in words for the user, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    lowered = password.strip().lower()
    if email:
        address = email.strip().lower()
        local = address.partition("@")[0]
        if lowered in (address, local) or (len(local) >= 4 and local in lowered):
            return "must not be or contain your e-mail address"
    if lowered in COMMON_PASSWORDS or len(set(lowered)) <= 2:
        return "is too common; choose a passphrase of several words"
    return None
