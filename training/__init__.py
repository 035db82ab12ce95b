"""Training, evaluation and the ``tagger`` command line, on top of the ``classifier`` library."""
