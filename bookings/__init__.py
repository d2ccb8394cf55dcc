"""Course and event bookings (REQUIREMENTS §4(2)オ, §6(1)オ): a catalogue of events with
sessions, booked on the public web page, by operators at the desk and by the IVR."""
