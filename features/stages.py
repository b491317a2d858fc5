"""The fixed stage vocabulary: ids, names and their order, and what each stage means.

The stages of the cluster life cycle (Menzel & Fornahl; IKED Cluster Policies Whitebook), as the
rule labellers (docs/labellers.md) and the reference world (docs/reference-world.md) read them:

==========  ======================================================================================
emerging    small or unspecialised but specialisation rising; high entry; few institutions
growth      specialised (LQ >= 1) and rising; grows faster than the same industry nationally; net
            entry > 0
mature      strong and large; growth about national; net entry about 0; firm size and top-firm
            share rising; dense institutions
decline     employment and specialisation falling; negative regional shift; net exit; innovation
            and relative wages falling
renewal     employment flat or falling but productivity, wages or innovation rising; entry into
            related industries
==========  ======================================================================================
"""

from __future__ import annotations

STAGES: tuple[str, ...] = ("emerging", "growth", "mature", "decline", "renewal")
STAGE_ID: dict[str, int] = {name: i for i, name in enumerate(STAGES)}
