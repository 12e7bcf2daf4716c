import io
import os
import tempfile
import unittest

os.environ["NOTES_UPLOADS"] = tempfile.mkdtemp()

from notes import app  # noqa: E402


class NotesTest(unittest.TestCase):
    def test_health(self):
        self.assertEqual(app.test_client().get("/health").status_code, 200)

    def test_upload_keeps_the_file(self):
        data = {"file": (io.BytesIO(b"hi"), "a b.txt")}
        answer = app.test_client().post("/upload", data=data)
        self.assertEqual(answer.status_code, 201)
        path = os.path.join(os.environ["NOTES_UPLOADS"], "a_b.txt")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"hi")

    def test_an_empty_note_is_refused(self):
        self.assertEqual(app.test_client().post("/notes", data={"text": " "}).status_code, 400)


if __name__ == "__main__":
    unittest.main()
