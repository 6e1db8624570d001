"""Companies: accounts your contacts work at, unique by normalised domain."""
