"""Every sub-command of ``pneumobench``, one module each (``add_parser`` and ``main``), the
dispatch table (``main``), the options they share (``options``) and the one resolver of which
experiment and store they read (``store``)."""
