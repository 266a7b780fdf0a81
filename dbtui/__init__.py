"""dbtui: the Textual wizard and the command line. Thin: all real work is an engine call."""
