"""Tools for the course's authors, not for learners (notebooks never import them).

* ``course`` — ``python -m helpers.authoring.course``: run the notebooks into build/, check they
  are stored clean, strip outputs, check an nbval report, write the student editions;
* ``site`` — the executed course as static pages (build/html/index.html);
* ``bench`` — ``python -m helpers.authoring.bench``: the training engine against naive loops;
* ``notebooks`` — what course and site share: notebook discovery, cells, run timings;
* ``install`` — run as a script by ``make setup``: installs the course with uv (pip's settings) or pip.
"""
