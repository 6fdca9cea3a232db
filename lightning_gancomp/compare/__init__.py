"""``gancomp compare``: several compression methods on one teacher at one budget, N seeds each,
one report (issue 12). ``spec`` reads the comparison config, ``compose`` turns it into arms with
complete ``gancomp`` configs, ``runner`` runs an arm's steps resumably, ``measure`` sizes and
scores the final generators, ``results`` / ``plots`` / ``report`` build the report from the
arms' files. The command itself is :mod:`lightning_gancomp.commands.compare`."""
